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


def test_installed_subpackages_come_from_the_root_folders():
    import stepwise.agents
    import stepwise.search

    assert stepwise.agents.__file__.startswith(str(REPO / "agents")) or "site-packages" in \
        stepwise.agents.__file__
    assert stepwise.search.__name__ == "stepwise.search"
