"""One world step as a LangGraph graph: every agent thinks in its own branch, then what
the branches wrote is saved, then the conversations they started happen, then their
actions change the world, then the step is saved.

    START --Send per agent--> agent --> write --> converse --> apply --> persist --> END

Each agent's branch is a line of nodes (``run_branch``): perceive (within the
world's radius) -> plan (whatever level does not reach now yet) -> observe (store what is
new, importance rated in one batch) -> react (talk, re-plan or carry on) -> reflect (when
due). A branch reads the world and its own agent's mind only, and a memory's id is its
position in its own agent's stream, so branches may run at once: ``Town.concurrency`` of
them on threads (their model calls overlap), their streams' SQLite writes held back and
written by ``write`` in agent order (``writer.py``). At concurrency 1 they run one at a
time in name order and write directly; either way a run is the same byte for byte, and
replayable from a cassette. What follows the branches runs on one thread.

With the paper's mechanisms (``Town.paper``) the agent's prompts carry its summary
description (made again each game day and after a reflection), a reaction re-plans the
rest of the day, conversations open with relationship summaries, and applying an action
walks the area tree to the area and object it uses and sets that object's state; an object
let go of returns to its state in the world file.

The memories a day plan is made from are retrieved when the day is planned
(``Town.plan_memories``: "when planning"). Runs made before retrieved them at every step,
which marks them accessed each time (recency) and costs most of a quiet step; those runs
keep "every step" and resume as they went.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from stepwise.agents.generative import (
    dialogue,
    locating,
    planning,
    reaction,
    reflection,
    summary,
)
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.state import (
    AgentOutcome,
    AgentState,
    Conversation,
    PlanItem,
    TalkIntent,
    WorldStepState,
    count,
)
from stepwise.agents.generative.writer import StepWriter
from stepwise.sim.sandbox.errors import WorldError

PLAN_RETRIEVE = 10
PlanMemories = Literal["when planning", "every step"]  # when a day plan's memories are retrieved
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
    paper: bool = False  # the paper's mechanisms (see the module doc)
    persist: Callable[[WorldStepState], None] = field(default=lambda state: None)
    concurrency: int = 1  # agents' branches run at once (1: one at a time, writing directly)
    writer: StepWriter | None = None  # holds the branches' writes while they run at once
    plan_memories: PlanMemories = "when planning"  # see the module doc


class Sight(TypedDict):
    kind: str  # agent | object
    subject: str  # an agent's name or an object's path
    text: str


class AgentBranch(TypedDict, total=False):
    """One agent's branch of a world step, filled node by node."""

    step: int
    agent: AgentState
    seen: list[Sight]
    new: list[str]  # what was not seen last step
    action: PlanItem
    talk: TalkIntent | None
    reflected: list[int]


def fan_out(state: WorldStepState) -> list[Send]:
    return [Send("agent", AgentBranch(step=state["step"], agent=state["agents"][name]))
            for name in sorted(state["agents"])]


def perceive(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """What the agent sees within the world's radius; what of it is new since last step."""
    town = runtime.context
    agent: AgentState = copy.deepcopy(branch["agent"])
    if town.paper:
        town.minds[agent["name"]].summary = agent.get("summary", "")
    seen = [Sight(kind=p.kind, subject=p.subject, text=p.text)
            for p in town.world.perceive(agent["name"], town.radius)]
    texts = [sight["text"] for sight in seen]
    new = [text for text in texts if text not in agent["seen"]]
    agent["seen"] = texts
    return {"agent": agent, "seen": seen, "new": new, "talk": None, "reflected": []}


def plan(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """The action for now, planning whatever level of the plan does not reach now yet."""
    agent, now = branch["agent"], runtime.context.world.now
    mind = runtime.context.minds[agent["name"]]
    if runtime.context.paper and summary.due(agent, now):
        summary.refresh(mind, agent, now)

    def memories() -> list[tuple[int, str]]:
        return mind.memory_pairs(mind.stream.retrieve(
            f"{agent['name']}'s plans for today", k=PLAN_RETRIEVE, now=now))

    every_step = runtime.context.plan_memories == "every step"
    action = planning.current_action(mind, agent, now, memories() if every_step else memories)
    return {"agent": agent, "action": action}


def observe(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """Store what is new as observations, rated in one batch."""
    agent = branch["agent"]
    remember(runtime.context.minds[agent["name"]], agent, branch["new"],
             now=runtime.context.world.now)
    return {"agent": agent}


def react(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """React to what is new (talk, or splice a reaction into the plan) or carry on."""
    town, agent, step = runtime.context, branch["agent"], branch["step"]
    if not branch["new"]:
        return {}
    name, now, action = agent["name"], town.world.now, branch["action"]
    others = [s["subject"] for s in branch["seen"]
              if s["kind"] == "agent" and dialogue.can_talk(agent, s["subject"], step)]
    decided = reaction.decide(town.minds[name], agent, now, action["text"],
                              "; ".join(branch["new"][:NEW_AT_ONCE]), others)
    if not decided.react:
        return {"agent": agent}
    count(agent, "reactions")
    text = f"talking with {decided.talk_to}" if decided.talk_to else decided.text
    action = planning.replan(agent, now, text, decided.minutes,
                             "" if decided.talk_to else action["area"])
    if town.paper and not decided.talk_to:  # a talk re-plans once it has been held
        planning.replan_rest(town.minds[name], agent, now, action)
    talk = TalkIntent(speaker=name, listener=decided.talk_to, reason=decided.text) \
        if decided.talk_to else None
    return {"agent": agent, "action": action, "talk": talk}


def reflect(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """Reflect when the importance of new memories has reached the threshold."""
    town, agent = runtime.context, branch["agent"]
    mind = town.minds[agent["name"]]
    if not reflection.due(mind, agent, town.threshold):
        return {}
    reflected = reflection.reflect(mind, agent, town.world.now)
    if town.paper and reflected:
        agent["summary_day"] = ""  # what the agent knows of itself changed
    return {"agent": agent, "reflected": reflected}


BRANCH_NODES = (perceive, plan, observe, react, reflect)


def run_branch(branch: AgentBranch, runtime: Runtime[Town]) -> AgentBranch:
    """perceive -> plan -> observe -> react -> reflect: one agent's part of a world step,
    each node's update applied in turn. Plain calls, not a graph of their own: a straight
    line of five nodes gains nothing from LangGraph's super-steps, which cost more than the
    nodes themselves at the paper's 10-second steps (8,640 world steps a game day)."""
    done = AgentBranch(**branch)
    for node in BRANCH_NODES:
        done.update(node(done, runtime) or {})
    return done


def agent_step(branch: AgentBranch, runtime: Runtime[Town]) -> dict:
    """Run the agent's branch; its outcome for the rest of the world step."""
    done = run_branch(branch, runtime)
    return {"outcomes": [AgentOutcome(agent=done["agent"], action=done["action"]["text"],
                                      area=done["action"]["area"], talk=done["talk"],
                                      reflected=done["reflected"])]}


def write(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    """Write what the branches' streams held back, agent by agent in name order."""
    if runtime.context.writer is not None:
        runtime.context.writer.write()
    return {}


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
                                  max_turns=town.max_turns, cooldown=town.cooldown,
                                  relationships=town.paper)
        held.append(Conversation(pair=[name, listener], turns=turns))
        planning.replan(agents[listener], town.world.now, f"talking with {name}", 10)
        if town.paper:
            minute = planning.minute_of(town.world.now)
            for who in (name, listener):
                talk_item = planning.at(agents[who]["day_plan"], minute)
                if talk_item is not None:
                    planning.replan_rest(town.minds[who], agents[who], town.world.now,
                                         talk_item)
    return {"agents": agents, "conversations": held}


def apply_actions(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    """Move each agent where its current action happens, set the action, advance the clock."""
    town, world = runtime.context, runtime.context.world
    minute = planning.minute_of(world.now)
    agents = copy.deepcopy(state["agents"])
    if town.paper:
        return apply_located(town, agents, minute)
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


def apply_located(town: Town, agents: dict[str, AgentState], minute: int) -> dict:
    """``apply_actions`` with the area-tree walk: each agent goes to the area and object
    its action was located at and sets the object's state; objects let go of and used by
    nobody return to their state in the world file."""
    world = town.world
    released: set[str] = set()
    for name in sorted(agents):
        current = planning.at(agents[name]["actions"], minute)
        if current is None:
            continue
        place = locating.locate(town.minds[name], agents[name], world, current, world.now)
        before = world.agent(name).object
        if place["area"] != world.agent(name).location:
            world.move(name, place["area"])
        world.set_action(name, current["text"], place["object"] or None)
        if place["object"]:
            world.set_object_state(place["object"], place["state"])
        if before and before != place["object"]:
            released.add(before)
    for thing in sorted(released):
        if not world.users(thing):
            world.set_object_state(thing, world.initial_state(thing))
    world.advance()
    return {"agents": agents}


def persist(state: WorldStepState, runtime: Runtime[Town]) -> dict:
    """Hand the finished step to whoever keeps the run (``Town.persist``)."""
    runtime.context.persist(state)
    return {}


def build_step_graph():
    graph = StateGraph(WorldStepState, context_schema=Town)
    graph.add_node("agent", agent_step)
    graph.add_node("write", write)
    graph.add_node("converse", converse)
    graph.add_node("apply", apply_actions)
    graph.add_node("persist", persist)
    graph.add_conditional_edges(START, fan_out, ["agent"])
    graph.add_edge("agent", "write")
    graph.add_edge("write", "converse")
    graph.add_edge("converse", "apply")
    graph.add_edge("apply", "persist")
    graph.add_edge("persist", END)
    return graph.compile()


def take_step(graph, town: Town, step: int, agents: dict[str, AgentState]) -> WorldStepState:
    """Run one world step; the state after it (agents, outcomes, conversations). Above
    concurrency 1 the streams' writes are held back until ``write`` (see the module doc)."""
    town.writer = StepWriter(town.minds) if town.concurrency > 1 else None
    try:
        return graph.invoke(
            WorldStepState(step=step, agents=agents, outcomes=[], conversations=[]),
            context=town, config={"max_concurrency": town.concurrency})
    finally:
        if town.writer is not None:
            town.writer.release()  # a step that failed drops what was held
            town.writer = None
