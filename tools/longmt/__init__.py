"""LongMT memory tools: view_summaries, view_pages and lookup_entities read memory of earlier
pages (the calls that write it, update_summaries and update_entities, are the agent's own
steps: ``stepwise.agents.longmt.updates``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {  # name -> the module that defines it
    "PageView": "stepwise.tools.longmt.modules",
    "memory_tools": "stepwise.tools.longmt.modules",
    "MODULES": "stepwise.tools.longmt.formats",
    "context_blocks": "stepwise.tools.longmt.formats",
}
__all__ = [
    "MODULES",
    "PageView",
    "context_blocks",
    "memory_tools",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package loads no langchain until a name is used.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
