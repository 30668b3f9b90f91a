"""Generative agents (Park et al. 2023): memory stream, reflection, planning, reaction and dialogue in a sandbox world."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {  # name -> the module that defines it
    "RunSettings": "stepwise.agents.generative.simulation",
    "Simulation": "stepwise.agents.generative.simulation",
    "Mind": "stepwise.agents.generative.mind",
    "AgentState": "stepwise.agents.generative.state",
    "take_step": "stepwise.agents.generative.step",
    "interview": "stepwise.agents.generative.interview",
}
__all__ = [
    "AgentState",
    "Mind",
    "RunSettings",
    "Simulation",
    "interview",
    "take_step",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package stays cheap: the step graph loads LangGraph.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
