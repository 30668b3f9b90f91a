"""A scripted chat model: hand-written answers, for tests and scripted scenario cassettes.

Agent turns are answered by position (the n-th answer when the request already holds
n-1 assistant messages), so a run resumed in a new process gets the same next answer; call
ids are made unique per turn. A request with no tools and no assistant message (a
prompt-defined think tool's own call) takes the next of ``plain_answers`` instead, in the
order this process asks them. Cassettes recorded from it say ``scripted`` in their header.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import word_usage


def ai(text: str = "", *calls: tuple[str, dict], invalid: Sequence[str] = ()) -> AIMessage:
    """An assistant message: text, ``(tool name, args)`` calls, and malformed raw calls."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": n, "args": a, "id": f"call_{n}_{i}", "type": "tool_call"}
                    for i, (n, a) in enumerate(calls)],
        invalid_tool_calls=[{"name": None, "args": raw, "id": f"bad_{i}", "error": None,
                             "type": "invalid_tool_call"} for i, raw in enumerate(invalid)],
    )


class ScriptedChatModel(ToolCallingMixin, BaseChatModel):
    """Answers from ``answers`` by assistant-turn count; see the module docstring."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    answers: list[AIMessage]
    plain_answers: list[str] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)  # tools and size of each request

    _plain_turn: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params("stepwise-scripted", "scripted")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or []]
        self.calls.append({"tools": tools, "messages": len(messages), "kwargs": kwargs})
        turn = sum(isinstance(m, AIMessage) for m in messages)
        if not tools and not turn and self.plain_answers:
            with self._lock:
                text = self.plain_answers[min(self._plain_turn, len(self.plain_answers) - 1)]
                self._plain_turn += 1
            message = AIMessage(content=text)
        else:
            if turn >= len(self.answers):
                raise IndexError(f"the script has {len(self.answers)} answers; turn {turn + 1} "
                                 "asked for another")
            script = self.answers[turn]
            message = script.model_copy(update={
                "tool_calls": [{**c, "id": f"call_{turn}_{i}"}
                               for i, c in enumerate(script.tool_calls)],
                "invalid_tool_calls": [{**c, "id": f"bad_{turn}_{i}"}
                                       for i, c in enumerate(script.invalid_tool_calls)]})
        # A tool call counts as five words.
        message.usage_metadata = word_usage(
            messages, len(message.text.split()) + 5 * len(message.tool_calls))
        return ChatResult(generations=[ChatGeneration(message=message)])
