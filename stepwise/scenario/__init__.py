"""Scenarios: YAML files naming an agent, its config, inputs and cassette, replayed and checked."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {  # name -> the module that defines it
    "Scenario": "stepwise.scenario.schema",
    "find_scenarios": "stepwise.scenario.loader",
    "load_scenario": "stepwise.scenario.loader",
    "ScenarioOutcome": "stepwise.scenario.runner",
    "run_scenario": "stepwise.scenario.runner",
    "register_agent": "stepwise.scenario.agents",
}
__all__ = [
    "Scenario",
    "ScenarioOutcome",
    "find_scenarios",
    "load_scenario",
    "register_agent",
    "run_scenario",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package stays cheap: running a scenario loads its agent.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
