"""The think agent's state: plain data, so a run checkpoints, forks and resumes cheaply.

Thoughts live in their own channel: native reasoning can be stripped from the message
history (as chat templates do) while think-tool thoughts stay inspectable.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Status = Literal["running", "answered", "too_many_errors", "turn_limit", "waiting_for_human"]


class Thought(TypedDict):
    """One thought: a think-tool result, or a model's native reasoning."""

    turn: int
    tool: str  # the think tool, or "native" for the model's own reasoning text
    request: str
    thought: str
    tokens: int


class Counters(TypedDict, total=False):
    """Running totals a node adds to; the metrics are computed from them."""

    turns: int
    turns_with_tools: int  # model turns with at least one tool bound
    think_turns: int
    think_calls: int
    think_tokens: int
    native_reasoning_tokens: int
    tool_calls: int
    tool_errors: int
    tokens_in: int
    tokens_out: int


def add_counts(old: Counters, new: Counters) -> Counters:
    return {**old, **{k: old.get(k, 0) + v for k, v in new.items()}}  # type: ignore[typeddict-item]


class ThinkState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    thoughts: Annotated[list[Thought], operator.add]
    counts: Annotated[Counters, add_counts]
    error_streak: int
    status: Status
