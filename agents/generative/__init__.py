"""Generative agents (Park et al. 2023): memory stream, reflection, planning, reaction and dialogue in a sandbox world."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

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


# Lazy, so that importing the package stays cheap: the step graph loads LangGraph.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
