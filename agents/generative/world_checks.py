"""What a simulation needs of its world before anything is written: a WORLD.json that
reads, at least one agent, and a clock with room for the steps asked for.

Each failure is one line naming the file (or the run) and the problem, found before a run
folder is touched, so a corrected rerun starts cleanly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stepwise.errors import StepwiseError
from stepwise.sim.sandbox.errors import WorldError
from stepwise.sim.sandbox.world import SandboxWorld, load_world


class ClockError(StepwiseError):
    """A run asked for more steps than its game clock can reach (dates end in 9999)."""


def read_world(path: str | Path) -> SandboxWorld:
    """The world in ``path`` at its start, if a simulation can run it."""
    world = load_world(path)
    if not world.agents:
        raise WorldError(f"{path}: the world has no agents; a simulation needs at least one")
    return world


def last_time(now: dt.datetime) -> dt.datetime:
    """The latest game time of ``now``'s kind: ``datetime.max``, or earlier for a clock
    behind UTC, whose times must still convert to UTC (the memory stream keeps them so)."""
    latest = dt.datetime.max.replace(tzinfo=now.tzinfo)
    offset = now.utcoffset()
    return latest + offset if offset is not None and offset < dt.timedelta(0) else latest


def steps_left(world: SandboxWorld) -> int:
    """How many more steps the world's clock can take before dates run out."""
    return (last_time(world.now) - world.now) // world.spec.clock.step


def check_room(world: SandboxWorld, steps: int, source: str | Path) -> None:
    """A ``ClockError`` naming ``source`` when ``steps`` more steps would pass the end of
    time (a step reads the clock one step on, so each needs a representable time)."""
    at = f"{world.now:%Y-%m-%d %H:%M%z}"
    if world.now.utcoffset() is not None:
        try:
            world.now.astimezone(dt.UTC)
        except OverflowError:
            raise ClockError(f"{source}: the clock's time {at} is outside the years 1 to "
                             "9999 in UTC, where a run keeps its times") from None
    left = steps_left(world)
    if steps <= left:
        return
    length = world.spec.clock.describe_step()
    if left == 0:
        raise ClockError(f"{source}: the clock is at {at}, the last time its {length} "
                         "steps can reach; the run can take no more steps")
    more = f"{left} more {length} step" if left == 1 else f"{left} more {length} steps"
    raise ClockError(f"{source}: the clock can take {more} "
                     f"from {at} (dates end in the year 9999), not {steps}")
