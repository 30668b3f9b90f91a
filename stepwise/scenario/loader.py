"""Reading scenario YAML, with errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stepwise.errors import ScenarioError
from stepwise.scenario.agents import known_agents, scenario_agent
from stepwise.scenario.schema import Scenario


def _line_of(node: yaml.Node | None, loc: tuple) -> int:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _errors(path: Path, root: yaml.Node, exc: ValidationError, prefix: tuple = ()) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = prefix + tuple(p for p in error["loc"] if p not in ("function-after",))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{path}:{_line_of(root, loc)}: {_field(loc)}: {message}")
    return lines


def load_scenario(path: str | Path) -> tuple[Scenario, Any, Any]:
    """The scenario and its agent's validated config and inputs; ``ScenarioError`` if bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read ({exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ScenarioError(f"{path}:{line}: malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario must be a mapping of fields")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError("\n".join(_errors(path, root, exc))) from None
    scenario._source = path
    try:
        scenario.cassette_path  # noqa: B018 -- refused here, before anything runs or is written
    except ScenarioError as exc:
        line = _line_of(root, ("cassette",))
        raise ScenarioError(str(exc).replace(f"{path}: ", f"{path}:{line}: ", 1)) from None
    agent = scenario_agent(scenario.agent)
    if agent is None:
        known = ", ".join(known_agents())
        raise ScenarioError(
            f"{path}:{_line_of(root, ('agent',))}: agent: unknown agent {scenario.agent!r} "
            f"(known: {known})"
        )
    problems = []
    parsed = []
    for section, model in (("config", agent.config), ("inputs", agent.inputs)):
        try:
            parsed.append(model.model_validate(getattr(scenario, section),
                                               context={"scenario_dir": path.parent}))
        except ValidationError as exc:
            problems += _errors(path, root, exc, (section,))
    if problems:
        raise ScenarioError("\n".join(problems))
    return scenario, parsed[0], parsed[1]


def find_scenarios(targets: list[str | Path]) -> list[Path]:
    """Scenario files named directly, or every ``*.yaml`` / ``*.yml`` under a folder."""
    found: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found += sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            found.append(target)
    return found
