"""Scenarios: YAML files naming an agent, its config, inputs and cassette, replayed and checked."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

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


# Lazy, so that importing the package stays cheap: running a scenario loads its agent.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
