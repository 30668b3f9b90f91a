"""Packages that name their main exports but load each only when it is first used.

Importing ``stepwise.search`` must not load LangGraph, nor ``stepwise.memory`` numpy and an
embedding model: each package lists its names in ``__all__`` and where each lives, and
module-level ``__getattr__`` (PEP 562) imports the home module on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` (its ``__name__``), whose names live
    in ``homes`` (name -> the module that defines it)."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
