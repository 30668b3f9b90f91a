"""How much an agent may think: think-tool budgets, and native thinking controls.

Adaptive-thinking work (AdaCoT, AdaptThink, Qwen3's thinking budgets) says thinking should
be spent where it pays. ``ThinkBudget`` bounds the think tools per run; when it is spent the
agent unbinds them and tells the model so. ``NativeThinking`` passes a backend's own switch
(``enable_thinking`` in the chat template, vLLM's ``thinking_token_budget``) through.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("stepwise.think")


class ThinkBudget(BaseModel):
    """Most think-tool calls and think tokens per run; ``None`` is unbounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)

    def spent(self, calls: int, tokens: int) -> bool:
        return (self.max_calls is not None and calls >= self.max_calls) or (
            self.max_tokens is not None and tokens >= self.max_tokens)

    def describe(self, calls: int, tokens: int) -> str:
        parts = []
        if self.max_calls is not None:
            parts.append(f"{calls}/{self.max_calls} think calls")
        if self.max_tokens is not None:
            parts.append(f"{tokens}/{self.max_tokens} think tokens")
        return ", ".join(parts) or "unbounded"


class NativeThinking(BaseModel):
    """A backend's own reasoning switch; unset fields are left to the backend's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    token_budget: int | None = Field(default=None, gt=0)

    def call_kwargs(self, model: BaseChatModel) -> dict[str, Any]:
        """What to add to each model call. Backends without such controls get nothing.

        A wrapper (the cassette recorder) is looked through to the model it passes calls to.
        """
        while isinstance(getattr(model, "model", None), BaseChatModel):
            model = model.model  # type: ignore[attr-defined]
        kwargs: dict[str, Any] = {}
        fields = type(model).model_fields
        if self.enabled is not None and "chat_template_kwargs" in fields:
            kwargs["chat_template_kwargs"] = {"enable_thinking": self.enabled}
        if self.token_budget is not None and "thinking_token_budget" in fields:
            kwargs["thinking_token_budget"] = self.token_budget
        ignored = [name for name, value in (("enabled", self.enabled),
                                            ("token_budget", self.token_budget))
                   if value is not None and not kwargs.get(
                       "chat_template_kwargs" if name == "enabled" else "thinking_token_budget")]
        if ignored:
            log.warning("%s has no native thinking control for %s; ignored",
                        type(model).__name__, " and ".join(ignored))
        return kwargs
