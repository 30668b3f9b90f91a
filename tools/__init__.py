"""Tools agents call (installed as ``stepwise.tools``): think tools, LongMT memory tools, tool errors."""

from __future__ import annotations

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package stays cheap and its subpackages (think, longmt)
    # load only when used.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
