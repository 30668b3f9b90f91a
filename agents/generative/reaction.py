"""Reacting: given what is new around the agent, continue the plan or react to it.

The decision reads the memories retrieved for the observation. A reaction either starts
a conversation (``talk_to`` one of the agents in sight) or is spliced into the plan from
now for its minutes (5-60). An answer that is not a JSON object falls back to a leading
yes/no; anything else continues the plan (``reaction_fallbacks``): not reacting is the
choice that changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stepwise.agents.generative.answers import json_object, yes_or_no
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import react_prompt
from stepwise.agents.generative.state import AgentState, count

RETRIEVE = 8


@dataclass(frozen=True)
class Reaction:
    react: bool
    text: str = ""
    minutes: int = 10
    talk_to: str | None = None


def decide(mind: Mind, agent: AgentState, now: datetime, action: str, observation: str,
           others: Sequence[str]) -> Reaction:
    memories = mind.stream.retrieve(observation, k=RETRIEVE, now=now)
    answer = mind.ask(react_prompt(mind.header(now), mind.name, action, observation,
                                   mind.memory_pairs(memories), others))
    data = json_object(answer)
    if data is None or not isinstance(data.get("react"), bool):
        said = yes_or_no(answer)
        count(agent, "reaction_fallbacks")
        return Reaction(bool(said), f"reacting to: {observation}"[:120]) if said else Reaction(False)
    if not data["react"]:
        return Reaction(False)
    talk_to = data.get("talk_to") if data.get("talk_to") in others else None
    text = str(data.get("reaction") or "").strip() or (
        f"talking with {talk_to}" if talk_to else f"reacting to: {observation}"[:120])
    try:
        minutes = min(60, max(5, int(data.get("minutes", 10))))
    except (TypeError, ValueError):
        minutes = 10
    return Reaction(True, text, minutes, talk_to)
