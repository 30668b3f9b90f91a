"""LongMT: a long-document translation agent with summary, page and entity memory.

It pages a document and, per page, may view earlier summaries, re-read the relevant
sentences of earlier pages and look up entity records (which of these is the module
policy's choice), then translates and updates its memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LongMTAgent", "Policy", "TranslationResult"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package loads no LangGraph until a name is used.
    if name in ("LongMTAgent", "TranslationResult"):
        from stepwise.agents.longmt import agent

        return getattr(agent, name)
    if name == "Policy":
        from stepwise.agents.longmt.policies import Policy

        return Policy
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
