"""The generative agents' state: plain data only, so a world step can be saved and resumed.

Models, memory streams and the world live in the step's runtime context (``mind.py``,
``step.py``); what is here is JSON as it stands and is saved after every step.
"""

from __future__ import annotations

import operator
from typing import Annotated, NotRequired, TypedDict


class PlanItem(TypedDict):
    """One span of a plan, in minutes of the day: [start, end)."""

    start: int
    end: int
    text: str
    area: str  # where it happens ("" to stay put)


class Place(TypedDict):
    """Where the current action happens, as the area-tree walk chose it (paper mechanisms)."""

    text: str  # the action it was chosen for
    named: str  # the area the plan line named ("" to stay put)
    area: str  # the area path the walk ended in
    object: str  # the object path used ("" for none)
    state: str  # the object's state while used


class AgentState(TypedDict):
    name: str
    day: str  # the ISO date ``day_plan`` is for ("" before the first plan)
    day_plan: list[PlanItem]  # 5-8 broad strokes tiling the day
    hour_plan: list[PlanItem]  # about-an-hour blocks tiling the current stroke
    actions: list[PlanItem]  # 5-15 minute actions tiling the current block
    reflected_through: int | None  # newest memory id when reflection last fired
    seen: list[str]  # what was perceived last step, so only what is new is reacted to
    cooldowns: dict[str, int]  # other agent -> first step at which they may talk again
    counters: dict[str, int]  # fallbacks and events, for the run's metrics
    # The paper's mechanisms only (absent from runs without them, which stay as they were):
    summary: NotRequired[str]  # the agent summary description, cached
    summary_day: NotRequired[str]  # the ISO date it was made ("" when due again)
    place: NotRequired[Place | None]  # where the current action happens


class TalkIntent(TypedDict):
    speaker: str
    listener: str
    reason: str


class AgentOutcome(TypedDict):
    """What one agent's branch of a world step decided."""

    agent: AgentState
    action: str
    area: str
    talk: TalkIntent | None
    reflected: list[int]  # ids of reflections written this step


class Conversation(TypedDict):
    pair: list[str]
    turns: list[list[str]]  # [speaker, utterance]


class WorldStepState(TypedDict, total=False):
    step: int  # the step being taken, from 0
    agents: dict[str, AgentState]
    outcomes: Annotated[list[AgentOutcome], operator.add]
    conversations: list[Conversation]


def new_agent(name: str) -> AgentState:
    return AgentState(name=name, day="", day_plan=[], hour_plan=[], actions=[],
                      reflected_through=None, seen=[], cooldowns={}, counters={})


def count(agent: AgentState, key: str, by: int = 1) -> None:
    agent["counters"][key] = agent["counters"].get(key, 0) + by
