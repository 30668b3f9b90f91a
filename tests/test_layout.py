"""The wheel holds one import package, stepwise, with the root folders mapped inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from .conftest import REPO


def test_wheel_maps_root_folders_under_stepwise(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("stepwise-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"stepwise", next(t for t in tops if t.endswith(".dist-info"))}
    for package in ("agents", "tools", "memory", "search", "llm", "scenario"):
        assert f"stepwise/{package}/__init__.py" in names
    assert not any(name.startswith(("agents/", "tools/", "memory/", "search/")) for name in names)
    for data in ("stepwise/tools/think/prompts/plan.md", "stepwise/sim/airline/data/tasks.json",
                 "stepwise/sim/airline/data/db.json", "stepwise/sim/airline/data/policy.md"):
        assert data in names


def test_every_package_folder_is_listed_for_the_wheel():
    """setuptools takes an explicit package list; a folder left out would vanish from wheels."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = {folder: name for name, folder in config["package-dir"].items()}
    found = set()
    for folder, name in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *relative)))
    assert found == listed, f"missing: {found - listed}, stale: {listed - found}"


def test_installed_subpackages_come_from_the_root_folders():
    import stepwise.agents
    import stepwise.search

    assert stepwise.agents.__file__.startswith(str(REPO / "agents")) or "site-packages" in \
        stepwise.agents.__file__
    assert stepwise.search.__name__ == "stepwise.search"
