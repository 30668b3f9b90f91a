"""One world step as a LangGraph graph: every agent thinks in its own branch, then the
conversations they started happen, then their actions change the world, then the step
is saved.

    START --Send per agent--> agent --> converse --> apply --> persist --> END

An agent's branch perceives (within the world's radius), plans what it needs for now,
stores what is new with batched importance, decides whether to react, and reflects when
due. Branches share one SQLite connection and memory ids appear in prompts, so a step runs
its branches one at a time (``max_concurrency=1``) in name order: a run is reproducible,
and replayable from a cassette.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from stepwise.agents.generative import dialogue, planning, reaction, reflection
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.state import (
    AgentOutcome,
    AgentState,
    Conversation,
    TalkIntent,
    WorldStepState,
    count,
)
from stepwise.sim.sandbox.errors import WorldError

PLAN_RETRIEVE = 10
NEW_AT_ONCE = 4


@dataclass
class Town:
    """The runtime context of a world step: the world, each agent's mind, the settings."""

    world: Any  # stepwise.sim.sandbox.world.SandboxWorld
    minds: dict[str, Mind]
    radius: float
    max_turns: int = dialogue.MAX_TURNS
    cooldown: int = dialogue.COOLDOWN
    threshold: int = reflection.THRESHOLD
    persist: Callable[[WorldStepState], None] = field(default=lambda state: None)


class AgentBranch(TypedDict):
    step: int
    agent: AgentState


def fan_out(state: WorldStepState) -> list[Send]:
    return [Send("agent", AgentBranch(step=state["step"], agent=state["agents"][name]))
            for name in sorted(state["agents"])]


def agent_step(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """Perceive, plan, remember, decide, reflect: one agent's part of a world step."""
    town, step = runtime.context, branch["step"]
    agent: AgentState = copy.deepcopy(branch["agent"])
    name, now = agent["name"], town.world.now
    mind = town.minds[name]
    seen = town.world.perceive(name, town.radius)
    texts = [p.text for p in seen]
    new = [t for t in texts if t not in agent["seen"]]
    agent["seen"] = texts
    context = mind.stream.retrieve(f"{name}'s plans for today", k=PLAN_RETRIEVE, now=now)
    current = planning.current_action(mind, agent, now, mind.memory_pairs(context))
    remember(mind, agent, new, now=now)
    talk = None
    if new:
        others = [p.subject for p in seen
                  if p.kind == "agent" and dialogue.can_talk(agent, p.subject, step)]
        decided = reaction.decide(mind, agent, now, current["text"],
                                  "; ".join(new[:NEW_AT_ONCE]), others)
        if decided.react:
            count(agent, "reactions")
            text = f"talking with {decided.talk_to}" if decided.talk_to else decided.text
            current = planning.replan(agent, now, text, decided.minutes,
                                      "" if decided.talk_to else current["area"])
            if decided.talk_to:
                talk = TalkIntent(speaker=name, listener=decided.talk_to, reason=decided.text)
    reflected: list[int] = []
    if reflection.due(mind, agent, town.threshold):
        reflected = reflection.reflect(mind, agent, now)
    return {"outcomes": [AgentOutcome(agent=agent, action=current["text"],
                                      area=current["area"], talk=talk, reflected=reflected)]}


def converse(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    """The conversations the branches started, one at a time; one per agent per step."""
    town, step = runtime.context, state["step"]
    outcomes = {o["agent"]["name"]: o for o in state["outcomes"]}
    agents = {name: o["agent"] for name, o in outcomes.items()}
    busy: set[str] = set()
    held: list[Conversation] = []
    for name in sorted(outcomes):
        talk = outcomes[name]["talk"]
        if talk is None:
            continue
        listener = talk["listener"]
        if {name, listener} & busy or listener not in agents or \
                not dialogue.can_talk(agents[listener], name, step):
            continue
        busy |= {name, listener}
        turns = dialogue.converse(town.minds, agents, name, listener, town.world.now, step,
                                  max_turns=town.max_turns, cooldown=town.cooldown)
        held.append(Conversation(pair=[name, listener], turns=turns))
        planning.replan(agents[listener], town.world.now, f"talking with {name}", 10)
    return {"agents": agents, "conversations": held}


def apply_actions(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    """Move each agent where its current action happens, set the action, advance the clock."""
    world = runtime.context.world
    minute = planning.minute_of(world.now)
    agents = copy.deepcopy(state["agents"])
    for name in sorted(agents):
        current = planning.at(agents[name]["actions"], minute)
        if current is None:
            continue
        if current["area"] and current["area"] != world.agent(name).location:
            try:
                world.move(name, current["area"])
            except WorldError:
                count(agents[name], "unknown_areas")
        world.set_action(name, current["text"])
    world.advance()
    return {"agents": agents}


def persist(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    runtime.context.persist(state)
    return {}


def build_step_graph():
    graph = StateGraph(WorldStepState, context_schema=Town)
    graph.add_node("agent", agent_step)
    graph.add_node("converse", converse)
    graph.add_node("apply", apply_actions)
    graph.add_node("persist", persist)
    graph.add_conditional_edges(START, fan_out, ["agent"])
    graph.add_edge("agent", "converse")
    graph.add_edge("converse", "apply")
    graph.add_edge("apply", "persist")
    graph.add_edge("persist", END)
    return graph.compile()


def take_step(graph, town: Town, step: int, agents: dict[str, AgentState]) -> WorldStepState:
    """Run one world step; the state after it (agents, outcomes, conversations)."""
    return graph.invoke(WorldStepState(step=step, agents=agents, outcomes=[], conversations=[]),
                        context=town, config={"max_concurrency": 1})
