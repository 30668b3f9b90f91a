"""Where an action happens: the paper's walk down the area tree (area -> sub-area ->
object), and the state the object takes while used.

A plan line names an area or nothing. A known area is where the walk starts; nothing
means where the agent is; a name the world does not have is counted
(``unknown_places``) and the walk starts from the top of the town. From there the model
picks one sub-area at a time until an area without sub-areas, then the object it uses
there (or none), then that object's state ("the stove is cooking"). An answer naming no
option is counted (``walk_fallbacks``, ``object_fallbacks``) and the walk takes the option
the agent is already in, else the one holding its home, else the first; an object it
cannot read is none. A place is chosen once per action: the same action at the same
named place keeps it, so continuing an activity asks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import (
    NO_OBJECT,
    object_prompt,
    state_prompt,
    walk_prompt,
)
from stepwise.agents.generative.state import AgentState, Place, PlanItem, count
from stepwise.sim.sandbox.spec import SEPARATOR, normalize_path
from stepwise.sim.sandbox.world import SandboxWorld

MAX_STATE = 60  # characters: a state is a short phrase, not an answer's prose


def last_part(path: str) -> str:
    return path.rpartition(SEPARATOR)[2]


def pick(answer: str, options: Sequence[str]) -> str | None:
    """The option an answer names: exactly (case, quotes and a final stop ignored), else
    the longest option the answer contains; None when it names none."""
    said = answer.strip().strip("\"'`*").rstrip(".").strip().casefold()
    by_name = {option.casefold(): option for option in options}
    if said in by_name:
        return by_name[said]
    inside = [option for option in options if option.casefold() in said]
    return max(inside, key=len) if inside else None


def fallback(paths: Sequence[str], here: str, home: str) -> str:
    for target in (here, home):
        for path in paths:
            if target and (target == path or target.startswith(path + SEPARATOR)):
                return path
    return paths[0]


def walk(mind: Mind, agent: AgentState, world: SandboxWorld, start: str, action: str,
         now: datetime) -> str:
    """From ``start`` ("" for the top of the town) down to an area without sub-areas."""
    here, home = world.agent(mind.name).location, world.agent(mind.name).home or ""
    area = start
    while paths := world.sub_areas(area):
        options = [last_part(path) for path in paths]
        chosen = pick(mind.ask(walk_prompt(mind.header(now), mind.name, action, here, area,
                                           options)), options)
        if chosen is None:
            count(agent, "walk_fallbacks")
            area = fallback(paths, here, home)
        else:
            area = paths[options.index(chosen)]
    return area


def choose_object(mind: Mind, agent: AgentState, world: SandboxWorld, area: str,
                  action: str, now: datetime) -> str:
    """The path of the object used in ``area`` for ``action``, or "" for none."""
    paths = world.objects_in(area)
    if not paths:
        return ""
    options = [last_part(path) for path in paths]
    answer = mind.ask(object_prompt(mind.header(now), mind.name, action, area, options))
    chosen = pick(answer, options)
    if chosen is None:
        if pick(answer, [NO_OBJECT]) is None:
            count(agent, "object_fallbacks")
        return ""
    return paths[options.index(chosen)]


def object_state(mind: Mind, agent: AgentState, world: SandboxWorld, thing: str,
                 action: str) -> str:
    """The state ``thing`` takes while used; "in use" when the answer is not a short
    phrase (``state_fallbacks``)."""
    answer = mind.ask(state_prompt(mind.name, action, last_part(thing),
                                   world.initial_state(thing))).strip()
    phrase = " ".join(answer.strip("\"'.").split())
    if not phrase or len(phrase) > MAX_STATE or "\n" in answer:
        count(agent, "state_fallbacks")
        return "in use"
    return phrase


def locate(mind: Mind, agent: AgentState, world: SandboxWorld, action: PlanItem,
           now: datetime) -> Place:
    """Where ``action`` happens, kept in the agent's state; chosen anew only for an action
    or a named place that differs from the last one's."""
    named = action["area"]
    known = agent.get("place")
    if known and known["text"] == action["text"] and known["named"] == named:
        return known
    if not named:
        start = world.agent(mind.name).location
    elif world.is_area(named):
        start = normalize_path(named)
    else:
        count(agent, "unknown_places")
        start = ""
    area = walk(mind, agent, world, start, action["text"], now)
    thing = choose_object(mind, agent, world, area, action["text"], now)
    state = object_state(mind, agent, world, thing, action["text"]) if thing else ""
    place = Place(text=action["text"], named=named, area=area, object=thing, state=state)
    agent["place"] = place
    count(agent, "walks")
    return place
