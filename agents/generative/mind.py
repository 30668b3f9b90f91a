"""One agent's runtime: its model, its memory stream and who it is. Not state: never saved.

``ask`` is the only way the agent's modules reach the model, so that every request is one
plain user message (what the cassettes key on) and every answer is text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from stepwise.agents.generative.costs import Ledger
from stepwise.agents.generative.prompts import agent_header
from stepwise.memory.stream import Memory, MemoryStream


@dataclass
class Mind:
    name: str
    description: str
    model: BaseChatModel
    stream: MemoryStream  # the agent's own
    areas: tuple[str, ...] = ()  # the places the agent can name in plans
    home: str = ""  # given in the header when set (the paper's mechanisms)
    summary: str = ""  # the agent summary description, used instead of the seed one when set
    ledger: Ledger | None = None  # where each request's tokens and seconds are counted

    def ask(self, prompt: str) -> str:
        started = time.perf_counter()
        answer = self.model.invoke([HumanMessage(prompt)])
        if self.ledger is not None:
            usage = getattr(answer, "usage_metadata", None) or {}
            self.ledger.add(self.name, usage.get("input_tokens", 0),
                            usage.get("output_tokens", 0), time.perf_counter() - started)
        return answer.text

    def header(self, now: datetime, action: str = "") -> str:
        doing = f" {self.name} is {action}." if action else ""
        home = f"\nHome: {self.home}." if self.home else ""
        places = f"\nPlaces: {', '.join(self.areas)}." if self.areas else ""
        return agent_header(self.name, self.summary or self.description,
                            now.strftime("%A %B %d, %H:%M")) + doing + home + places

    def memory_pairs(self, memories: Iterable[Memory]) -> list[tuple[int, str]]:
        return [(m.id, m.text) for m in memories]
