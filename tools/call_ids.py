"""Tool-call ids unique in a history, so each tool reply answers exactly one call.

Servers may leave call ids out, repeat them within a turn, or (like Hermes parsers that
hash the call text) repeat them across turns; a reply's ``tool_call_id`` would then match
two calls. Every agent that runs a model's calls gives them ids here first. A fresh id
depends only on the history and the turn's tag, so a history rebuilt on resume gets the
same ids again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage


def used_call_ids(history: Iterable[AnyMessage]) -> set[str]:
    """The ids of every call (valid or malformed) the assistant made in ``history``."""
    return {call.get("id") for message in history if isinstance(message, AIMessage)
            for call in [*message.tool_calls, *message.invalid_tool_calls]
            if call.get("id")}


def unique_call_ids(message: AIMessage, history: Iterable[AnyMessage],
                    tag: int | str) -> AIMessage:
    """``message`` with every call's id unique in ``history`` and in the message itself.

    An id the model gave is kept while no earlier call has it; any other call gets
    ``call_{tag}_{i}`` (``invalid_{tag}_{i}`` for a malformed one), ``i`` its place in
    the turn (with a further ``_n`` should a model have given that id already). ``tag`` names the turn (its number, or page and round) so fresh ids differ
    from turn to turn.
    """
    used = used_call_ids(history)

    def unique(call: Any, i: int, prefix: str) -> Any:
        given = call.get("id")
        fresh = given if given and given not in used else f"{prefix}_{tag}_{i}"
        taken = 0
        while fresh in used:  # a model-given id that looks like one of ours
            taken += 1
            fresh = f"{prefix}_{tag}_{i}_{taken}"
        used.add(fresh)
        return {**call, "id": fresh}

    return message.model_copy(update={
        "tool_calls": [unique(c, i, "call") for i, c in enumerate(message.tool_calls)],
        "invalid_tool_calls": [unique(c, i, "invalid")
                               for i, c in enumerate(message.invalid_tool_calls)]})
