"""The simulated sandbox town at run time: where agents are, what they do, object states
and the game clock, with the operations generative agents act through.

This is a simulation (after Park et al. 2023's Smallville), not a model of any real place
or person. The map (areas, positions, identities) never changes; the state that does
(step, agent locations and actions, object states) is plain data, so a world copies in
O(agents + objects) and saves as rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from stepwise.sim.sandbox.errors import WorldError
from stepwise.sim.sandbox.spec import (
    SEPARATOR,
    Agent,
    WorldSpec,
    normalize_path,
    read_world_spec,
    suggestion,
    world_spec_from_json,
)

DEFAULT_RADIUS = 2.0
"""Perception radius in map units; in the bundled town it spans one building's rooms."""


class Perception(BaseModel):
    """One thing an agent perceives, as a sentence for its memory stream."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["agent", "object"]
    subject: str  # an agent name or an object path
    area: str
    distance: float
    text: str  # e.g. "Maria Lopez is sitting at the counter", "stove is idle"


class SandboxWorld:
    """A simulated town: a fixed map of areas and objects, agents moving in it, a clock.

    Distances are Euclidean between area positions (a sub-area without its own position is
    at its parent's). An agent perceives every other agent and object in its own area, and
    those in areas within ``radius`` of it.
    """

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        positions: dict[str, tuple[float, float]] = {}
        objects: dict[str, str] = {}
        for path, area in spec.walk():
            parent = path.rpartition(SEPARATOR)[0]
            positions[path] = (area.x, area.y) if area.x is not None and area.y is not None \
                else positions[parent]
            for thing in area.objects:
                objects[f"{path}{SEPARATOR}{thing.name}"] = thing.state
        self._positions = MappingProxyType(positions)
        self._initial = MappingProxyType(dict(objects))
        self._objects = objects
        self._agents = {agent.name: agent for agent in spec.agents}
        self._step = 0

    # Reading

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def step(self) -> int:
        """How many steps the clock has advanced since the start."""
        return self._step

    @property
    def now(self) -> dt.datetime:
        return self.spec.clock.at(self._step)

    @property
    def agents(self) -> Mapping[str, Agent]:
        """Every agent by name, read-only (an ``Agent`` is frozen; change it by operations)."""
        return MappingProxyType(self._agents)

    @property
    def objects(self) -> Mapping[str, str]:
        """Every object path with its state, read-only."""
        return MappingProxyType(self._objects)

    def agent(self, name: str) -> Agent:
        found = self._agents.get(name)
        if found is None:
            raise WorldError(f"unknown agent {name!r}{suggestion(name, self._agents)}")
        return found

    def area_paths(self) -> list[str]:
        """Every area path, parents before their sub-areas, in file order."""
        return list(self._positions)

    def object_state(self, path: str) -> str:
        return self._objects[self._object_path(path)]

    def initial_state(self, path: str) -> str:
        """The state the world file gives ``path``, which an object returns to when let go."""
        return self._initial[self._object_path(path)]

    def sub_areas(self, path: str = "") -> list[str]:
        """The areas directly inside ``path`` (the top-level areas for ""), in file order:
        one level of the area tree an agent walks down to choose where to act."""
        prefix = self._area_path(path) + SEPARATOR if path else ""
        return [p for p in self._positions
                if p.startswith(prefix) and SEPARATOR not in p.removeprefix(prefix)]

    def objects_in(self, area: str) -> list[str]:
        """The paths of the objects in ``area`` itself (not in its sub-areas), in file order."""
        area = self._area_path(area)
        return [p for p in self._objects if p.rpartition(SEPARATOR)[0] == area]

    def users(self, path: str) -> list[str]:
        """The agents using the object at ``path``, by name."""
        path = self._object_path(path)
        return sorted(a.name for a in self._agents.values() if a.object == path)

    def is_area(self, path: str) -> bool:
        return isinstance(path, str) and normalize_path(path) in self._positions

    def position(self, area: str) -> tuple[float, float]:
        return self._positions[self._area_path(area)]

    def distance(self, area: str, other: str) -> float:
        return math.dist(self.position(area), self.position(other))

    def perceive(self, agent: str, radius: float = DEFAULT_RADIUS) -> list[Perception]:
        """What ``agent`` sees: others and objects in its area or within ``radius`` of it,
        nearest first (agents before objects at one distance, then by name)."""
        here = self.agent(agent).location
        if not isinstance(radius, int | float) or not radius >= 0:
            raise WorldError(f"a perception radius is a number >= 0, not {radius!r}")
        seen: list[Perception] = []
        for other in self._agents.values():
            there = other.location
            if other.name != agent and self._near(here, there, radius):
                sentence = f"{other.name} is {other.action}" if other.action else \
                    f"{other.name} is " + ("here" if there == here else f"in {there}")
                seen.append(self._sight("agent", other.name, there, here, sentence,
                                        say_where=other.action is not None))
        for path, state in self._objects.items():
            area, _, name = path.rpartition(SEPARATOR)
            if self._near(here, area, radius):
                seen.append(self._sight("object", path, area, here, f"{name} is {state}"))
        return sorted(seen, key=lambda p: (p.distance, p.kind != "agent", p.subject))

    def describe_area(self, path: str) -> str:
        """A few lines about an area for a prompt: where it is, its sub-areas, its objects
        and who is there (in it or in its sub-areas)."""
        path = self._area_path(path)
        parent = path.rpartition(SEPARATOR)[0]
        prefix = path + SEPARATOR
        children = [p.removeprefix(prefix) for p in self._positions
                    if p.startswith(prefix) and SEPARATOR not in p.removeprefix(prefix)]
        things = [f"{p.removeprefix(prefix)} ({state})" for p, state in self._objects.items()
                  if p.rpartition(SEPARATOR)[0] == path]
        people = []
        for agent in self._agents.values():
            if agent.location == path or agent.location.startswith(prefix):
                where = "" if agent.location == path else \
                    f" ({agent.location.removeprefix(prefix)})"
                doing = f": {agent.action}" if agent.action else ""
                people.append(f"{agent.name}{where}{doing}")
        return "\n".join([
            f"Area: {path}" + (f" (part of {parent})" if parent else ""),
            "Sub-areas: " + (", ".join(children) or "none"),
            "Objects: " + (", ".join(things) or "none"),
            "People: " + ("; ".join(people) or "nobody"),
        ])

    # Changing

    def move(self, agent: str, area: str) -> Agent:
        """Put ``agent`` in ``area`` (a known area path). Its action stays; an object it was
        using is let go when that object is not in the new area."""
        current = self.agent(agent)
        area = self._area_path(area)
        using = current.object
        if using is not None and using.rpartition(SEPARATOR)[0] != area:
            using = None
        return self._replace(current, location=area, object=using)

    def set_action(self, agent: str, text: str | None, object: str | None = None) -> Agent:
        """Set what ``agent`` is doing (a verb phrase; empty or None for nothing) and the
        object it uses, which must be in its own area."""
        current = self.agent(agent)
        text = (text or "").strip() or None
        if object is not None:
            object = self._object_path(object)
            if object.rpartition(SEPARATOR)[0] != current.location:
                raise WorldError(f"{agent} cannot use {object!r} from {current.location!r}; "
                                 "move to its area first")
        return self._replace(current, action=text, object=object)

    def set_object_state(self, path: str, state: str) -> None:
        path = self._object_path(path)
        if not isinstance(state, str) or not state.strip():
            raise WorldError(f"the state of {path!r} must be non-empty text, not {state!r}")
        self._objects[path] = state.strip()

    def advance(self) -> dt.datetime:
        """Move the clock one step on; the new time."""
        self._step += 1
        return self.now

    # Plain state

    def state(self) -> dict[str, Any]:
        """What changes in a run, as plain JSON values (the map is ``spec``)."""
        return {
            "step": self._step,
            "agents": {name: {"location": a.location, "action": a.action, "object": a.object}
                       for name, a in self._agents.items()},
            "objects": dict(self._objects),
        }

    @classmethod
    def from_state(cls, spec: WorldSpec, state: Mapping[str, Any]) -> SandboxWorld:
        """The world ``spec`` as it was when ``state()`` gave ``state``; each part checked."""
        world = cls(spec)
        step = state.get("step")
        if not isinstance(step, int) or step < 0:
            raise WorldError(f"a world step is an integer >= 0, not {step!r}")
        world._step = step
        agents, objects = state.get("agents", {}), state.get("objects", {})
        if set(agents) != set(world._agents):
            raise WorldError(f"the state's agents {sorted(agents)} are not the world's "
                             f"{sorted(world._agents)}")
        if set(objects) != set(world._objects):
            raise WorldError("the state's objects are not the world's: "
                             f"{sorted(set(objects) ^ set(world._objects))}")
        try:
            for path, value in objects.items():
                world.set_object_state(path, value)
            for name, fields in agents.items():
                world.move(name, fields["location"])
                world.set_action(name, fields.get("action"), fields.get("object"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise WorldError(f"a malformed world state ({type(exc).__name__}: {exc})") from None
        return world

    def copy(self) -> SandboxWorld:
        """An independent world with the same state, sharing the immutable map."""
        twin = object.__new__(SandboxWorld)
        twin.spec, twin._positions, twin._step = self.spec, self._positions, self._step
        twin._initial = self._initial
        twin._objects, twin._agents = dict(self._objects), dict(self._agents)
        return twin

    # Helpers

    def _replace(self, agent: Agent, **changes: Any) -> Agent:
        updated = agent.model_copy(update=changes)
        self._agents[agent.name] = updated
        return updated

    def _area_path(self, path: str) -> str:
        return self._lookup(path, "area", self._positions, "object", self._objects)

    def _object_path(self, path: str) -> str:
        return self._lookup(path, "object", self._objects, "area", self._positions)

    @staticmethod
    def _lookup(path: str, kind: str, known: Mapping[str, Any], other_kind: str,
                other: Mapping[str, Any]) -> str:
        """``path`` normalised if it names a ``kind``, else a one-line error saying why."""
        if not isinstance(path, str):
            raise WorldError(f"an {kind} path is text, not {path!r}")
        normal = normalize_path(path)
        if normal in known:
            return normal
        if normal in other:
            raise WorldError(f"{normal!r} is an {other_kind}, not an {kind}")
        raise WorldError(f"unknown {kind} {path!r}{suggestion(normal, known)}")

    def _near(self, here: str, there: str, radius: float) -> bool:
        return here == there or math.dist(self._positions[here],
                                          self._positions[there]) <= radius

    def _sight(self, kind: Literal["agent", "object"], subject: str, area: str, here: str,
               sentence: str, say_where: bool = True) -> Perception:
        if area != here and say_where:
            sentence += f" (in {area})"
        return Perception(kind=kind, subject=subject, area=area, text=sentence,
                          distance=math.dist(self._positions[here], self._positions[area]))


def load_world(path: str | Path) -> SandboxWorld:
    """A simulated world from a WORLD.json file, at its start; ``WorldError`` when unusable."""
    return SandboxWorld(read_world_spec(path))


def bundled_world(name: str = "party") -> SandboxWorld:
    """A world shipped with stepwise: ``party`` (a Valentine's Day party in a three-agent
    town) or ``smallville`` (25 agents, the party and a mayoral candidacy)."""
    folder = resources.files("stepwise.sim.sandbox").joinpath("data")
    known = sorted(p.name.removesuffix(".json") for p in folder.iterdir()
                   if p.name.endswith(".json"))
    if name not in known:
        raise WorldError(f"no bundled world {name!r} (bundled: {', '.join(known)})")
    text = folder.joinpath(f"{name}.json").read_text("utf-8")
    return SandboxWorld(world_spec_from_json(text, f"bundled world {name}"))
