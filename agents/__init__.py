"""Agent families (installed as ``stepwise.agents``): think-as-tool, LongMT, generative agents."""

from __future__ import annotations

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package loads one agent family, not all three.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
