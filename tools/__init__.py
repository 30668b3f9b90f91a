"""Tools agents call (installed as ``stepwise.tools``): think tools, LongMT memory tools, tool errors."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

_HOMES = {  # name -> the module that defines it
    "error_message": "stepwise.tools.executor",
    "is_error": "stepwise.tools.executor",
    "run_tool_call": "stepwise.tools.executor",
    "run_tool_calls": "stepwise.tools.executor",
    "unique_call_ids": "stepwise.tools.call_ids",
}
__all__ = [
    "error_message",
    "is_error",
    "run_tool_call",
    "run_tool_calls",
    "unique_call_ids",
]


# Lazy, so that importing the package stays cheap and its subpackages (think, longmt)
# load only when used.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
