"""Every package exports its main names (`from stepwise.memory import MemoryStream`), and
importing a package stays cheap: the names load their modules when first used."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["stepwise", "stepwise.agents", "stepwise.agents.generative",
            "stepwise.agents.longmt", "stepwise.agents.think", "stepwise.documents",
            "stepwise.llm", "stepwise.memory", "stepwise.scenario", "stepwise.scoring",
            "stepwise.search", "stepwise.tools", "stepwise.tools.longmt", "stepwise.tools.think"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_imports(name):
    package = importlib.import_module(name)
    assert package.__all__, f"{name} exports nothing"
    for exported in package.__all__:
        value = getattr(package, exported)
        assert exported in dir(package)
        home = getattr(value, "__module__", None)
        assert home is None or home.startswith("stepwise"), (exported, home)
    with pytest.raises(AttributeError):
        package.NoSuchName  # noqa: B018


def test_main_names_come_from_their_packages():
    from stepwise.memory import MemoryStream
    from stepwise.memory.stream import MemoryStream as defined
    from stepwise.search import ExploreOptions, PairOptions
    from stepwise.tools.longmt import memory_tools

    assert MemoryStream is defined
    assert ExploreOptions.__module__ == "stepwise.search.options"
    assert PairOptions.__module__ == "stepwise.search.run"
    assert callable(memory_tools)


def test_importing_the_packages_loads_no_torch_and_no_langgraph():
    lazy = ["stepwise", "stepwise.agents", "stepwise.agents.generative", "stepwise.memory",
            "stepwise.scenario", "stepwise.search", "stepwise.tools", "stepwise.tools.longmt"]
    code = (f"import sys\nfor name in {lazy!r}: __import__(name)\n"
            "print(sorted(m for m in ('torch', 'langgraph') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
