"""LongMT memory tools: view_summaries, view_pages and lookup_entities read memory of earlier
pages (the calls that write it, update_summaries and update_entities, are the agent's own
steps: ``stepwise.agents.longmt.updates``).
"""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

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


# Lazy, so that importing the package loads no langchain until a name is used.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
