"""The agent summary description (Park et al. 2023, appendix A): who the agent is now, made
from what it remembers, used in its prompts in place of the seed paragraph.

It is cached in the agent's state and made again once per game day (before the day is
planned) and after a reflection, which is when what the agent knows of itself changes.
Three retrievals, as in the paper (core characteristics, current occupation, feelings
about recent progress), and one request. An empty answer keeps the seed description
(``summary_fallbacks``).
"""

from __future__ import annotations

from datetime import datetime

from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import summary_prompt
from stepwise.agents.generative.state import AgentState, count

PER_QUERY = 5


def due(agent: AgentState, now: datetime) -> bool:
    return agent.get("summary_day") != now.date().isoformat()


def refresh(mind: Mind, agent: AgentState, now: datetime) -> str:
    """Make the summary again; store it in the agent's state and mind."""
    queries = [f"{mind.name}'s core characteristics", f"{mind.name}'s current daily occupation",
               f"{mind.name}'s feeling about recent progress in life"]
    found = mind.stream.retrieve(queries, k=PER_QUERY, now=now)
    memories = {m.id: m.text for hits in found for m in hits}
    text = " ".join(mind.ask(summary_prompt(mind.name, mind.description,
                                            memories.items())).split())
    if not text:
        count(agent, "summary_fallbacks")
        text = mind.description
    agent["summary"], agent["summary_day"] = text, now.date().isoformat()
    mind.summary = text
    count(agent, "summaries")
    return text
