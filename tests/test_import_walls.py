"""The walls between packages, read from every module's imports (ast, nothing imported).

Search code knows no agent and agents know no search (the explorer talks to agents through
its protocols); tools know no agent; the model backends know no simulated world. The
crossings and package cycles allowed are listed below by name (none now), so that a new
one fails here.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import networkx as nx
import pytest

from .conftest import REPO

WALLS = [  # (importer, imported): no module under the first imports one under the second
    ("stepwise.search", "stepwise.agents"),
    ("stepwise.agents", "stepwise.search"),
    ("stepwise.tools", "stepwise.agents"),
    ("stepwise.llm", "stepwise.sim"),
    ("stepwise.memory", "stepwise.agents"),
    ("stepwise.scoring", "stepwise.agents"),
]
KNOWN_CROSSINGS: set[tuple[str, str]] = set()  # a crossing that must stay is named here
KNOWN_CYCLES: set[frozenset[str]] = set()  # likewise a cycle between packages


def modules() -> dict[str, Path]:
    """Every module of the wheel, by the name it is imported as."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found: dict[str, Path] = {}
    for name, folder in config["package-dir"].items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((name, *parts))] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The stepwise modules ``name`` imports, anywhere in its body (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph() -> nx.DiGraph:
    known = modules()
    graph = nx.DiGraph()
    for name, path in known.items():
        graph.add_edges_from((name, target) for target in imports_of(name, path, known))
    return graph


def test_the_graph_is_read_from_real_imports():
    graph = import_graph()
    assert graph.has_edge("stepwise.search.explorer", "stepwise.search.tree")
    assert graph.has_edge("stepwise.agents.longmt.environment", "stepwise.search.environment") \
        is False
    assert len(graph) > 100


def test_no_module_imports_across_a_wall():
    crossings = {(u, v) for u, v in import_graph().edges
                 for importer, imported in WALLS
                 if u.startswith(importer + ".") or u == importer
                 if v.startswith(imported + ".") or v == imported}
    assert crossings - KNOWN_CROSSINGS == set(), "new imports across a wall"
    assert KNOWN_CROSSINGS - crossings == set(), "gone: strike them from KNOWN_CROSSINGS"


def test_no_new_cycle_between_packages():
    def area(module: str) -> str:
        return ".".join(module.split(".")[:3])

    packages = nx.DiGraph((area(u), area(v)) for u, v in import_graph().edges
                          if area(u) != area(v))
    cycles = {frozenset(c) for c in nx.simple_cycles(packages, length_bound=4)}
    assert cycles - KNOWN_CYCLES == set(), "a new cycle between packages"
    assert KNOWN_CYCLES - cycles == set(), "gone: strike them from KNOWN_CYCLES"


def test_every_simulated_world_is_declared_where_the_backends_find_it():
    """The backends import no world: each ``@register_sim`` model (a world's, or the
    generative agents' simulated townsfolk) is an entry point."""
    from importlib.metadata import entry_points

    registered = set()
    for path in [*(REPO / "stepwise" / "sim").rglob("*.py"), *(REPO / "agents").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_sim":
                registered.add(node.args[0].value)
    declared = {point.name for point in entry_points(group="stepwise.sim_models")}
    assert registered == declared and len(declared) >= 3


def test_a_stale_install_without_the_worlds_says_to_reinstall(monkeypatch):
    from stepwise.errors import ModelURIError
    from stepwise.llm import from_uri, sim

    monkeypatch.setattr(sim, "entry_points", lambda **_: [])
    monkeypatch.setattr(sim, "SIM_MODELS", {"echo": sim.SIM_MODELS["echo"]})
    with pytest.raises(ModelURIError, match=r"known: sim:echo\); the bundled worlds are "
                       r"missing: reinstall stepwise"):
        from_uri("sim:translator")
