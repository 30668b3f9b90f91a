"""A chat model that answers through a function of the request: for agents whose every
model call is a fresh conversation (LongMT's page prompts), where answering by turn
count cannot tell one request from the next. ``ScriptedChatModel`` is this model with the
turn-count answer function (``stepwise.testing.scripted.Script``).

Tests use it to stand in for a model that misbehaves in a chosen way (drops lines, writes
broken JSON, calls tools that do not exist); cassettes recorded from it say ``scripted``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import word_usage

# (messages, names of the bound tools) -> the answer, as text or a whole message
Respond = Callable[[list[BaseMessage], list[str]], "AIMessage | str"]


class RespondingChatModel(ToolCallingMixin, BaseChatModel):
    """Answers each request with ``respond(messages, tool_names)``; records what it was asked."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    respond: Respond
    calls: list[dict[str, Any]] = Field(default_factory=list)

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
        self.calls.append({"tools": tools, "messages": list(messages), "kwargs": kwargs})
        answer = self.respond(list(messages), tools)
        message = AIMessage(content=answer) if isinstance(answer, str) else answer.model_copy()
        # A tool call counts as five words.
        message.usage_metadata = word_usage(
            messages, len(message.text.split()) + 5 * len(message.tool_calls))
        return ChatResult(generations=[ChatGeneration(message=message)])
