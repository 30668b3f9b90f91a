"""LongMT memory tools: view_summaries, view_pages and lookup_entities read memory of earlier
pages; update_summaries and update_entities are the model calls that write it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {  # name -> the module that defines it
    "PageView": "stepwise.tools.longmt.modules",
    "memory_tools": "stepwise.tools.longmt.modules",
    "MemoryUpdate": "stepwise.tools.longmt.updates",
    "update_entities": "stepwise.tools.longmt.updates",
    "update_summaries": "stepwise.tools.longmt.updates",
    "MODULES": "stepwise.tools.longmt.formats",
    "context_blocks": "stepwise.tools.longmt.formats",
}
__all__ = [
    "MODULES",
    "MemoryUpdate",
    "PageView",
    "context_blocks",
    "memory_tools",
    "update_entities",
    "update_summaries",
]


def __getattr__(name: str) -> Any:
    # Lazy, because of an import cycle: the memory tools import the LongMT agent's prompts,
    # and stepwise.agents.longmt imports this package's formats.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
