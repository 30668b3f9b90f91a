"""Agent families (installed as ``stepwise.agents``): think-as-tool, LongMT, generative agents."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

_HOMES = {  # name -> the module that defines it
    "EnvSpec": "stepwise.agents.environments",
    "LongMTAgent": "stepwise.agents.longmt",
    "ThinkAgent": "stepwise.agents.think",
    "Simulation": "stepwise.agents.generative",
}
__all__ = [
    "EnvSpec",
    "LongMTAgent",
    "Simulation",
    "ThinkAgent",
]


# Lazy, so that importing the package loads one agent family, not all three.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
