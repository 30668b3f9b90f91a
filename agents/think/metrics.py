"""Metrics of a think-agent run: think rate (AdaCoT's trigger rate), calls, tokens, errors."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from stepwise.agents.think.state import Counters
from stepwise.wording import plural


class RunMetrics(BaseModel):
    """Totals of one run (or of many, summed with ``combine``)."""

    turns: int = 0
    turns_with_tools: int = 0  # model turns with tools bound: with none called, see below
    think_turns: int = 0
    think_calls: int = 0
    think_tokens: int = 0
    native_reasoning_tokens: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def think_rate(self) -> float:
        """The share of model turns that called at least one think tool."""
        return self.think_turns / self.turns if self.turns else 0.0

    @classmethod
    def from_counts(cls, counts: Counters | None) -> RunMetrics:
        return cls(**(counts or {}))

    @classmethod
    def combine(cls, runs: Iterable[RunMetrics]) -> RunMetrics:
        total = cls()
        for run in runs:
            for name in cls.model_fields:
                setattr(total, name, getattr(total, name) + getattr(run, name))
        return total

    @property
    def never_called_tools(self) -> bool:
        """Tools were bound and the model never called one: likely its chat template or
        server does not pass tool schemas, so the run measures prose, not tool use."""
        return self.turns_with_tools > 0 and self.tool_calls == 0

    def no_tool_calls_warning(self) -> str | None:
        """The line a run ends with when ``never_called_tools``; None otherwise."""
        if not self.never_called_tools:
            return None
        return (f"the model made no tool calls in {plural(self.turns_with_tools, 'turn')} "
                "with tools bound: its chat template or server may not be passing tool "
                "schemas")

    def as_dict(self) -> dict[str, float]:
        return {**self.model_dump(), "think_rate": round(self.think_rate, 4)}

    def summary(self) -> str:
        return (f"{plural(self.turns, 'turn')}, think rate {self.think_rate:.2f} "
                f"({plural(self.think_calls, 'think call')}, "
                f"{plural(self.think_tokens, 'think token')}), "
                f"{plural(self.tool_calls, 'tool call')} "
                f"({plural(self.tool_errors, 'error')}), "
                f"{plural(self.tokens_in, 'token')} in, {self.tokens_out} out")
