"""Reflection: when recent memories add up to enough importance, infer insights from them.

It fires when the summed importance of memories written since the last reflection reaches
the threshold (150 in the paper; at exactly the threshold too), and any attempt resets the
sum, so a model that cannot reflect is not asked again every step. Steps, as in the
paper: 3 salient questions from the 100 most recent memories, retrieval per question,
then 5 insights that cite the ids of the memories they rest on.

An insight is dropped (and counted as ``insights_dropped``) when it cites no id or any id
that was not among the memories shown to the model: an insight is only as good as its
evidence, and evidence the model never saw is made up even when the stream holds that id. An answer with no
readable question or insight inserts nothing. Kept insights are stored as ``reflection``
memories with their evidence, so the stream gives them their depth and later reflections
can build on them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from stepwise.agents.generative.answers import numbered_lines, with_evidence
from stepwise.agents.generative.importance import rate
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import insights_prompt, questions_prompt
from stepwise.agents.generative.state import AgentState, count

THRESHOLD = 150
RECENT = 100
PER_QUESTION = 5
QUESTIONS = 3
INSIGHTS = 5


def newest_id(mind: Mind) -> int | None:
    newest = mind.stream.recent(1)
    return newest[0].id if newest else None


def due(mind: Mind, agent: AgentState, threshold: int = THRESHOLD) -> bool:
    return mind.stream.importance_since(agent["reflected_through"]) >= threshold


def insights(agent: AgentState, answer: str, shown: Collection[int]
             ) -> list[tuple[str, list[int]]]:
    """The cited insights of an answer whose every evidence id is one of those ``shown``."""
    kept = []
    for line in numbered_lines(answer)[:INSIGHTS]:
        cited = with_evidence(line)
        if cited is None or not all(mid in shown for mid in cited[1]):
            count(agent, "insights_dropped")
            continue
        kept.append((cited[0], sorted(set(cited[1]))))
    return kept


def reflect(mind: Mind, agent: AgentState, now: datetime) -> list[int]:
    """Questions -> retrieval -> insights -> stored reflections; the new memory ids."""
    agent["reflected_through"] = newest_id(mind)
    count(agent, "reflections")
    recent = mind.stream.recent(RECENT)
    questions = numbered_lines(mind.ask(questions_prompt(mind.memory_pairs(recent))))[:QUESTIONS]
    if not questions:
        count(agent, "reflection_fallbacks")
        return []
    found = mind.stream.retrieve(questions, k=PER_QUESTION, now=now)
    pool = {m.id: m.text for hits in found for m in hits}
    kept = insights(agent, mind.ask(insights_prompt(mind.name, pool.items())), set(pool))
    if not kept:
        count(agent, "reflection_fallbacks")
        return []
    importances = rate(mind, agent, [text for text, _ in kept])
    ids = [mind.stream.add(text, importance=value, created=now, kind="reflection",
                           evidence=evidence)
           for (text, evidence), value in zip(kept, importances, strict=True)]
    count(agent, "insights", len(ids))
    agent["reflected_through"] = newest_id(mind)
    return ids
