"""A scripted chat model: hand-written answers, for tests and scripted scenario cassettes.

It is a ``RespondingChatModel`` whose answer function is the script (``Script``): agent
turns are answered by position (the n-th answer when the request already holds n-1
assistant messages), so a run resumed in a new process gets the same next answer; call
ids are made unique per turn. A request with no tools and no assistant message (a
prompt-defined think tool's own call) takes the next of ``plain_answers`` instead, in the
order this process asks them. Cassettes recorded from it say ``scripted`` in their header.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field, model_validator

from stepwise.testing.responding import RespondingChatModel


def ai(text: str = "", *calls: tuple[str, dict], invalid: Sequence[str] = ()) -> AIMessage:
    """An assistant message: text, ``(tool name, args)`` calls, and malformed raw calls."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": n, "args": a, "id": f"call_{n}_{i}", "type": "tool_call"}
                    for i, (n, a) in enumerate(calls)],
        invalid_tool_calls=[{"name": None, "args": raw, "id": f"bad_{i}", "error": None,
                             "type": "invalid_tool_call"} for i, raw in enumerate(invalid)],
    )


class Script:
    """Answers by assistant-turn count, and plain requests in the order asked."""

    def __init__(self, answers: Sequence[AIMessage], plain_answers: Sequence[str] = ()) -> None:
        self.answers = list(answers)
        self.plain_answers = list(plain_answers)
        self._plain_turn = 0
        self._lock = threading.Lock()

    def __call__(self, messages: list[BaseMessage], tools: list[str]) -> AIMessage:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        if not tools and not turn and self.plain_answers:
            with self._lock:
                text = self.plain_answers[min(self._plain_turn, len(self.plain_answers) - 1)]
                self._plain_turn += 1
            return AIMessage(content=text)
        if turn >= len(self.answers):
            raise IndexError(f"the script has {len(self.answers)} answers; turn {turn + 1} "
                             "asked for another")
        script = self.answers[turn]
        return script.model_copy(update={
            "tool_calls": [{**c, "id": f"call_{turn}_{i}"}
                           for i, c in enumerate(script.tool_calls)],
            "invalid_tool_calls": [{**c, "id": f"bad_{turn}_{i}"}
                                   for i, c in enumerate(script.invalid_tool_calls)]})


class ScriptedChatModel(RespondingChatModel):
    """Answers from ``answers`` by assistant-turn count; see the module docstring."""

    answers: list[AIMessage]
    plain_answers: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _responds_by_script(cls, data: Any) -> Any:
        if isinstance(data, dict) and "respond" not in data and "answers" in data:
            data = {**data, "respond": Script(data["answers"], data.get("plain_answers", ()))}
        return data
