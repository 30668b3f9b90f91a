"""Importance: one model call rates a batch of new memories 1-10 (poignancy, as in the paper).

Fallback, in order: memories the answer did not rate (prose, out-of-range numbers, missing
lines) are asked for once more, alone; those still unrated get ``DEFAULT_IMPORTANCE``, the
middle of the scale, and are counted as ``importance_fallbacks``. The memory itself is
always the real text: a model that cannot rate never turns into a placeholder memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepwise.agents.generative.answers import numbered_integers
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import importance_prompt
from stepwise.agents.generative.state import AgentState, count

DEFAULT_IMPORTANCE = 5


def rate(mind: Mind, agent: AgentState, texts: Sequence[str]) -> list[int]:
    """One importance per text, from at most two model calls."""
    ratings: dict[int, int] = {}
    pending = list(range(len(texts)))
    for attempt in range(2):
        if not pending:
            break
        if attempt:
            count(agent, "importance_retries")
        answer = mind.ask(importance_prompt(mind.name, [texts[i] for i in pending]))
        rated = numbered_integers(answer, len(pending), 1, 10)
        for position, index in enumerate(pending, 1):
            if position in rated:
                ratings[index] = rated[position]
        pending = [i for i in pending if i not in ratings]
    count(agent, "importance_fallbacks", len(pending))
    return [ratings.get(i, DEFAULT_IMPORTANCE) for i in range(len(texts))]


def remember(mind: Mind, agent: AgentState, texts: Sequence[str], *, now: datetime,
             kind: str = "observation") -> list[int]:
    """Rate and store ``texts`` in the agent's stream; their ids, in order."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return []
    importances = rate(mind, agent, texts)
    return [mind.stream.add(text, importance=value, created=now, kind=kind)
            for text, value in zip(texts, importances, strict=True)]
