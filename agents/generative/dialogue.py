"""Dialogue between two agents: bounded turns, an end flag, and a cool-down for the pair.

Each speaker retrieves what it remembers about the other (and what was just said) before
every turn, as in the paper. The conversation stops at ``max_turns``, when a speaker sets
``end``, or when a turn comes back empty. A turn that is not a JSON object is taken as
the utterance itself (``dialogue_fallbacks``). Afterwards every utterance is stored as a
memory of both agents, and the pair may not talk again for ``cooldown`` world steps (by
default an hour of game time: ``cooldown_steps``).

With the paper's mechanisms each agent first sums up its relationship with the other from
what it remembers of them (one request each, before the first turn); every turn's prompt
carries that summary. An empty summary is left out (``relationship_fallbacks``).
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime

from stepwise.agents.generative.answers import json_object
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import dialogue_prompt, relationship_prompt
from stepwise.agents.generative.state import AgentState, count

MAX_TURNS = 6
COOLDOWN = 6  # world steps: an hour of game time at 10-minute steps
COOLDOWN_TIME = dt.timedelta(hours=1)
RETRIEVE = 6


def cooldown_steps(step: dt.timedelta) -> int:
    """The steps a pair waits before talking again: an hour of game time, at least one."""
    return max(1, -(-COOLDOWN_TIME // step))


def can_talk(agent: AgentState, other: str, step: int) -> bool:
    return agent["cooldowns"].get(other, 0) <= step


def relationship(mind: Mind, agent: AgentState, other: str, now: datetime) -> str:
    """How the agent sees ``other``, summed up from what it remembers of them."""
    found = mind.stream.retrieve([other, f"{mind.name}'s relationship with {other}"],
                                 k=RETRIEVE, now=now)
    memories = {m.id: m.text for hits in found for m in hits}
    text = " ".join(mind.ask(relationship_prompt(mind.header(now), mind.name, other,
                                                 memories.items())).split())
    if not text:
        count(agent, "relationship_fallbacks")
    return text


def turn(mind: Mind, agent: AgentState, other: str, now: datetime,
         turns: list[list[str]], max_turns: int, seen_as: str = "") -> tuple[str, bool]:
    """One utterance and whether the speaker ends the conversation with it."""
    query = [other] + ([turns[-1][1]] if turns else [])
    found = mind.stream.retrieve(query, k=RETRIEVE, now=now)
    memories = {m.id: m.text for hits in found for m in hits}
    answer = mind.ask(dialogue_prompt(mind.header(now), mind.name, other, memories.items(),
                                      [(who, text) for who, text in turns], max_turns,
                                      seen_as))
    data = json_object(answer)
    if data is None or not isinstance(data.get("utterance"), str):
        count(agent, "dialogue_fallbacks")
        return answer.strip(), False
    return data["utterance"].strip(), bool(data.get("end"))


def converse(minds: dict[str, Mind], agents: dict[str, AgentState], speaker: str,
             listener: str, now: datetime, step: int, *, max_turns: int = MAX_TURNS,
             cooldown: int = COOLDOWN, relationships: bool = False) -> list[list[str]]:
    """Talk until done; store the conversation for both; start the pair's cool-down.
    ``relationships``: each first sums up how it sees the other (the paper's mechanism)."""
    turns: list[list[str]] = []
    order = (speaker, listener)
    seen_as = {who: relationship(minds[who], agents[who], other, now) if relationships else ""
               for who, other in (order, order[::-1])}
    while len(turns) < max_turns:
        who = order[len(turns) % 2]
        other = order[(len(turns) + 1) % 2]
        text, end = turn(minds[who], agents[who], other, now, turns, max_turns, seen_as[who])
        if not text:
            break
        turns.append([who, text])
        if end:
            break
    for who, other in (order, order[::-1]):
        lines = [f'{said_by} said to {said_to}: "{text}"'
                 for said_by, text in turns
                 for said_to in [other if said_by == who else who]]
        remember(minds[who], agents[who], lines, now=now, kind="dialogue")
        agents[who]["cooldowns"][other] = step + 1 + cooldown
        count(agents[who], "conversations")
    return turns
