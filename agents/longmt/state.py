"""The LongMT agent's state and its per-page step trace.

State is plain data plus one immutable value, the translation memory: forking a state
after page k shares everything finished so far, so it costs O(what changed), not
O(document). The step trace is what ``stepwise translate`` writes as JSONL, one object
per page.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from stepwise.memory.translation import TranslationMemory


class ModuleCall(TypedDict):
    """One memory module call of a page's query step."""

    tool: str
    args: dict[str, Any]
    status: str  # ok | error
    result: str  # the tool's text (or the error the model read)
    tokens: int  # estimated tokens of the result


class PageStep(TypedDict, total=False):
    """Everything one page did, in order: query, translate, update."""

    page: int  # from 0
    sentences: int
    policy: str
    decided_by: str  # rule | model | fallback | first page | given
    fallback_reason: str  # why the model's decision could not be used
    model_turns: int  # decision turns a model took with the memory tools bound
    model_tool_calls: int  # tool calls (well-formed or not) it made in them
    modules: list[ModuleCall]
    decision_errors: int
    context_tokens: int
    source: list[str]
    translation: list[str]
    attempts: int  # translation requests made for the page
    splits: int  # times a page (or part) was split after broken alignment
    unaligned: int  # lines whose translation could not be aligned and were left as answered
    updates: list[dict[str, Any]]
    tokens_in: int
    tokens_out: int
    # The page's model calls (decision, translate) as the model saw and wrote them, when
    # the backend recorded tokens: purpose, prompt/completion token ids, logprobs, model.
    model_calls: list[dict[str, Any]]
    seconds: dict[str, float]


class LongMTState(TypedDict, total=False):
    page: int  # the next page to translate, from 0
    memory: TranslationMemory
    steps: Annotated[list[PageStep], operator.add]
    current: PageStep  # the page in progress, filled node by node
    context: list[tuple[str, str]]  # (tool, result) retrieved for the page in progress
