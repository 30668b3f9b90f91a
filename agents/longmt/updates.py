"""update_summaries and update_entities: the model calls that write LongMT's memory.

After a page is translated the model summarises it and lists its entities; what it says
becomes memory only after parsing and validation. An entity answer that does not parse
inserts nothing (and says why in the step trace): a half-read answer must not write
half-true records. Entities already recorded that occur on the page get the page added
to their mentions whatever the model lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from stepwise.agents.longmt.prompts import (
    SYSTEM_PROMPT,
    entities_prompt,
    json_array,
    summary_prompt,
)
from stepwise.llm.messages import token_usage
from stepwise.memory.translation import EntityUpdate, TranslationMemory

UPDATE_SUMMARIES = "update_summaries"
UPDATE_ENTITIES = "update_entities"


@dataclass
class MemoryUpdate:
    """What one update call did, for the step trace."""

    tool: str
    memory: TranslationMemory
    written: list[str] = field(default_factory=list)  # summary text, or entity names
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0

    def trace(self) -> dict:
        return {"tool": self.tool, "written": self.written, "error": self.error,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}


def _ask(model: BaseChatModel, prompt: str) -> tuple[str, int, int]:
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt)]
    answer = model.invoke(messages)
    return answer.text, *token_usage(answer)


def update_summaries(model: BaseChatModel, memory: TranslationMemory, page: int, tgt: str,
                     source: Sequence[str], translation: Sequence[str]) -> MemoryUpdate:
    """Summarise a finished page (``page`` from 0) into summary memory."""
    text, tokens_in, tokens_out = _ask(model, summary_prompt(page, tgt, source, translation))
    summary = " ".join(text.split())
    if not summary:
        return MemoryUpdate(UPDATE_SUMMARIES, memory, error="the model wrote no summary",
                            tokens_in=tokens_in, tokens_out=tokens_out)
    return MemoryUpdate(UPDATE_SUMMARIES, memory.with_summary(page, summary), [summary],
                        tokens_in=tokens_in, tokens_out=tokens_out)


def update_entities(model: BaseChatModel, memory: TranslationMemory, page: int,
                    source: Sequence[str], translation: Sequence[str]) -> MemoryUpdate:
    """Record the entities of a finished page; a conflicting translation keeps the first."""
    known = sorted(memory.entities)
    text, tokens_in, tokens_out = _ask(model, entities_prompt(page, source, translation, known))
    seen = memory.mention([r.name for r in memory.entities_in(" ".join(source))], page)
    rows = json_array(text)
    if rows is None:
        return MemoryUpdate(UPDATE_ENTITIES, seen, error="no JSON array in the answer",
                            tokens_in=tokens_in, tokens_out=tokens_out)
    updates, skipped = [], 0
    for row in rows:
        try:
            update = EntityUpdate.model_validate(row)
        except ValidationError:
            skipped += 1
            continue
        if update.name.strip() and update.translation.strip():
            updates.append(update)
        else:
            skipped += 1
    error = f"{skipped} of {len(rows)} records unusable" if skipped else None
    return MemoryUpdate(UPDATE_ENTITIES, seen.with_entities(updates, page),
                        [u.name for u in updates], error, tokens_in, tokens_out)
