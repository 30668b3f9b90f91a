"""One agent's runtime: its model, its memory stream and who it is. Not state: never saved.

``ask`` is the only way the agent's modules reach the model, so that every request is one
plain user message (what the cassettes key on) and every answer is text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from stepwise.agents.generative.prompts import agent_header
from stepwise.memory.stream import Memory, MemoryStream


@dataclass
class Mind:
    name: str
    description: str
    model: BaseChatModel
    stream: MemoryStream  # the agent's own
    areas: tuple[str, ...] = ()  # the places the agent can name in plans

    def ask(self, prompt: str) -> str:
        return self.model.invoke([HumanMessage(prompt)]).text

    def header(self, now: datetime, action: str = "") -> str:
        doing = f" {self.name} is {action}." if action else ""
        places = f"\nPlaces: {', '.join(self.areas)}." if self.areas else ""
        return agent_header(self.name, self.description, now.strftime("%A %B %d, %H:%M")
                            ) + doing + places

    def memory_pairs(self, memories: Iterable[Memory]) -> list[tuple[int, str]]:
        return [(m.id, m.text) for m in memories]
