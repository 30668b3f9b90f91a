"""WORLD.json: the schema of a simulated sandbox town, and reading it with one-line errors.

A world is a tree of areas (a building, its rooms, ...) holding objects with a state, a
set of agents placed in areas, and a game clock. Paths join names with "/":
"Hobbs Cafe/kitchen" is an area, "Hobbs Cafe/kitchen/stove" an object in it. Lists, not
JSON objects, hold areas, objects and agents, so a name given twice is reported instead
of silently overwritten.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stepwise.sim.sandbox.errors import WorldError

SEPARATOR = "/"
LEVELS_SHOWN = 3  # of a long error location, the levels named at each end


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a name cannot be empty")
    if SEPARATOR in value:
        raise ValueError(f"a name cannot contain {SEPARATOR!r} (it separates path parts)")
    return value


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("cannot be empty")
    return value


Name = Annotated[str, AfterValidator(_name)]
Text = Annotated[str, AfterValidator(_text)]


def normalize_path(path: str) -> str:
    """``path`` with the spaces around each part and leading or trailing "/" removed."""
    return SEPARATOR.join(part.strip() for part in path.strip().strip(SEPARATOR).split(SEPARATOR))


class Spec(BaseModel):
    """Base of every WORLD.json model: frozen plain data, unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GameObject(Spec):
    """A thing in an area whose state agents see and change ("stove": "idle")."""

    name: Name
    state: Text


class Area(Spec):
    """A place. Top-level areas need a position; a sub-area without one is at its parent's."""

    name: Name
    x: float | None = None
    y: float | None = None
    areas: tuple[Area, ...] = ()
    objects: tuple[GameObject, ...] = ()


class Relationship(Spec):
    """How an agent sees another at the start: a sentence stored as one of its seed memories."""

    agent: Name
    text: Text = Field(description="e.g. 'Maria Lopez is a regular at my cafe.'")


class Agent(Spec):
    """An agent: the seed identity, where it is, what it is doing, and what it remembers.

    ``action`` is a verb phrase ("making coffee"), read as "<name> is <action>";
    ``object`` is the path of the object the agent is using, in its own area.
    """

    name: Name
    description: Text = Field(description="The seed identity paragraph.")
    traits: tuple[Text, ...] = ()
    location: Text = Field(description="An area path, e.g. 'Hobbs Cafe/kitchen'.")
    home: Text | None = Field(default=None, description="An area path the agent lives in.")
    action: Text | None = None
    object: Text | None = None
    memories: tuple[Text, ...] = Field(default=(), description="Initial memories.")
    relationships: tuple[Relationship, ...] = ()

    @property
    def seed_memories(self) -> tuple[str, ...]:
        """What the agent remembers at the start: its memories, then its relationships."""
        return self.memories + tuple(r.text for r in self.relationships)

    @field_validator("location", "home", "object")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else normalize_path(value)


class Clock(Spec):
    """Game time: the start, and how long one step of the simulation lasts, in minutes or
    in seconds (one of the two; the paper's agents take 10-second steps)."""

    start: dt.datetime
    minutes_per_step: int | None = Field(default=None, gt=0)
    seconds_per_step: int | None = Field(default=None, gt=0)

    @field_validator("start", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not an ISO 8601 date and time "
                             "such as 2023-02-13T08:00:00") from None

    @model_validator(mode="after")
    def _one_length(self) -> Clock:
        if (self.minutes_per_step is None) == (self.seconds_per_step is None):
            raise ValueError("give the length of a step as minutes_per_step or as "
                             "seconds_per_step, one of the two")
        try:
            _ = self.step
        except OverflowError:
            raise ValueError("a step cannot last longer than 999999999 days") from None
        return self

    @property
    def step(self) -> dt.timedelta:
        """How much game time one step lasts."""
        if self.seconds_per_step is not None:
            return dt.timedelta(seconds=self.seconds_per_step)
        return dt.timedelta(minutes=self.minutes_per_step or 0)

    def describe_step(self) -> str:
        """``10-minute`` or ``10-second``: the step's length as an adjective."""
        if self.seconds_per_step is not None:
            return f"{self.seconds_per_step}-second"
        return f"{self.minutes_per_step}-minute"

    def at(self, step: int) -> dt.datetime:
        return self.start + self.step * step

    def stamp(self, time: dt.datetime) -> str:
        """``time`` in ISO 8601, to the second where steps are counted in seconds."""
        return time.isoformat(timespec="minutes" if self.seconds_per_step is None
                              else "seconds")

    def with_step_seconds(self, seconds: int) -> Clock:
        """This clock taking ``seconds``-second steps."""
        return self.model_copy(update={"minutes_per_step": None, "seconds_per_step": seconds})


class Event(Spec):
    """News seeded in one agent (a party, a candidacy) whose spread the metrics follow:
    every agent is asked ``question`` and an answer holding all ``keywords`` knows it. An
    event with a place and a time is also one to attend."""

    name: Name
    host: Name = Field(description="The agent who knows of it at the start.")
    question: Text
    keywords: tuple[Text, ...] = Field(min_length=1)
    place: Text | None = Field(default=None, description="An area path where it happens.")
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @field_validator("place")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else normalize_path(value)


class WorldSpec(Spec):
    """A whole WORLD.json, checked: every path it names exists, every name is unique."""

    name: Name
    description: str = ""
    clock: Clock
    areas: tuple[Area, ...] = Field(min_length=1)
    agents: tuple[Agent, ...] = ()
    streets: tuple[tuple[Name, Name], ...] = Field(
        default=(), description="Pairs of top-level areas a street joins; when given, "
        "every top-level area must be reachable from every other.")
    events: tuple[Event, ...] = ()

    def walk(self) -> Iterator[tuple[str, Area]]:
        """Every area with its path, parents before children, in file order."""
        def below(prefix: str, areas: tuple[Area, ...]) -> Iterator[tuple[str, Area]]:
            for area in areas:
                path = f"{prefix}{SEPARATOR}{area.name}" if prefix else area.name
                yield path, area
                yield from below(path, area.areas)

        return below("", self.areas)


def parse_world_spec(data: Any, source: str = "WORLD.json") -> WorldSpec:
    """Validate decoded WORLD.json data; a ``WorldError`` names the first offending item."""
    if not isinstance(data, Mapping):
        raise WorldError(f"{source}: the top level must be a JSON object with clock, areas "
                         f"and agents, not {type(data).__name__}")
    try:
        spec = WorldSpec.model_validate(data)
    except ValidationError as exc:
        raise WorldError(f"{source}: {_first_error(data, exc)}") from None
    _check(spec, source)
    return spec


def read_world_spec(path: str | Path) -> WorldSpec:
    """Read and validate a WORLD.json file."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorldError(f"cannot read world file {path}: {exc}") from None
    return world_spec_from_json(text, str(path))


def world_spec_from_json(text: str, source: str = "WORLD.json") -> WorldSpec:
    """Validate WORLD.json text; a repeated key in one JSON object is an error."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise WorldError(f"{source} is not JSON: {exc}") from None
    except _DuplicateKey as exc:
        raise WorldError(f"{source}: the key {exc.args[0]!r} appears twice in one object"
                         ) from None
    except RecursionError:  # the decoder's own limit, met before any validation
        raise WorldError(f"{source}: the file nests too deeply to read (areas inside areas "
                         "hundreds of levels deep)") from None
    return parse_world_spec(data, source)


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _first_error(data: Any, exc: ValidationError) -> str:
    """The first validation error as "where: what", items named by their "name" field."""
    error = exc.errors()[0]
    levels: list[str] = []  # a field and the items it leads to: "areas['Cafe']"
    node = data
    for part in error["loc"]:
        item = None
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            item = node[part]
            name = item.get("name") if isinstance(item, dict) else None
            index = f"[{name!r}]" if isinstance(name, str) and name.strip() else f"[{part}]"
            if levels:
                levels[-1] += index
            else:
                levels.append(index)
        else:
            if isinstance(node, dict):
                item = node.get(part)
            levels.append(str(part))
        node = item
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "missing":
        message = "missing"
    elif error["type"] == "recursion_depth_exceeded":  # pydantic stops at about 255 levels
        message = "the areas nest too deeply to check"
    return f"{_location(levels) or 'world'}: {message}"


def _location(levels: list[str]) -> str:
    """The dotted path of ``levels``, its middle cut out when it is long: a world nested
    hundreds of levels deep would otherwise be named in a line of thousands of characters."""
    if len(levels) <= 2 * LEVELS_SHOWN + 1:
        return ".".join(levels)
    return (".".join(levels[:LEVELS_SHOWN]) + " … " + ".".join(levels[-LEVELS_SHOWN:])
            + f" ({len(levels)} levels deep)")


def _check(spec: WorldSpec, source: str) -> None:
    """Cross-references and uniqueness, which the per-field schema cannot see."""
    def fail(message: str) -> None:
        raise WorldError(f"{source}: {message}")

    areas: dict[str, Area] = {}
    objects: set[str] = set()
    for path, area in spec.walk():
        if path in areas:
            fail(f"area {path!r} is defined twice")
        areas[path] = area
        if (area.x is None) != (area.y is None):
            fail(f"area {path!r} has only one of x and y; give both or neither")
        if SEPARATOR not in path and area.x is None:
            fail(f"top-level area {path!r} needs a position (x and y)")
        children = {child.name for child in area.areas}
        for thing in area.objects:
            object_path = f"{path}{SEPARATOR}{thing.name}"
            if object_path in objects:
                fail(f"object {object_path!r} is defined twice")
            if thing.name in children:
                fail(f"object {object_path!r} has the name of a sub-area of {path!r}")
            objects.add(object_path)

    names: set[str] = set()
    for agent in spec.agents:
        if agent.name in names:
            fail(f"agent {agent.name!r} is defined twice")
        names.add(agent.name)
        for field, path in (("location", agent.location), ("home", agent.home)):
            if path is not None and path not in areas:
                fail(f"agent {agent.name!r}: {field} {path!r} is not an area"
                     f"{suggestion(path, areas)}")
        if agent.object is not None:
            area, _, _ = agent.object.rpartition(SEPARATOR)
            if agent.object not in objects:
                where = (f"there is no area {area!r}" if area not in areas
                         else f"{area!r} has no such object")
                fail(f"agent {agent.name!r}: object {agent.object!r} does not exist "
                     f"({where})")
            if area != agent.location:
                fail(f"agent {agent.name!r} uses {agent.object!r} but is in "
                     f"{agent.location!r}")
    for agent in spec.agents:
        for relation in agent.relationships:
            if relation.agent not in names:
                fail(f"agent {agent.name!r}: relationship with {relation.agent!r}, who is "
                     f"not an agent of this world{suggestion(relation.agent, names)}")
            if relation.agent == agent.name:
                fail(f"agent {agent.name!r}: relationship with itself")
    _check_streets(spec, fail)
    _check_events(spec, areas, names, fail)


def _check_streets(spec: WorldSpec, fail: Callable[[str], None]) -> None:
    """Streets name top-level areas, and every top-level area can be reached by them."""
    if not spec.streets:
        return
    tops = [area.name for area in spec.areas]
    joined: dict[str, set[str]] = {name: set() for name in tops}
    for first, second in spec.streets:
        for end in (first, second):
            if end not in joined:
                fail(f"street ({first!r}, {second!r}): {end!r} is not a top-level area"
                     f"{suggestion(end, joined)}")
        joined[first].add(second)
        joined[second].add(first)
    reached, frontier = {tops[0]}, [tops[0]]
    while frontier:
        for nxt in sorted(joined[frontier.pop()] - reached):
            reached.add(nxt)
            frontier.append(nxt)
    unreachable = [name for name in tops if name not in reached]
    if unreachable:
        fail(f"area {unreachable[0]!r} is unreachable: no street leads to it from "
             f"{tops[0]!r}" + (f" ({len(unreachable)} areas are cut off)"
                               if len(unreachable) > 1 else ""))


def _check_events(spec: WorldSpec, areas: Mapping[str, Area], names: set[str],
                  fail: Callable[[str], None]) -> None:
    seen: set[str] = set()
    for event in spec.events:
        if event.name in seen:
            fail(f"event {event.name!r} is defined twice")
        seen.add(event.name)
        if event.host not in names:
            fail(f"event {event.name!r}: host {event.host!r} is not an agent of this world"
                 f"{suggestion(event.host, names)}")
        if event.place is not None and event.place not in areas:
            fail(f"event {event.name!r}: place {event.place!r} is not an area"
                 f"{suggestion(event.place, areas)}")
        if (event.start is None) != (event.end is None):
            fail(f"event {event.name!r} has only one of start and end; give both or neither")
        if event.start is not None and event.end is not None and event.start >= event.end:
            fail(f"event {event.name!r} ends before it starts")


def suggestion(name: str, known: Mapping[str, Any] | set[str]) -> str:
    """' (did you mean ...?)' for a close known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
