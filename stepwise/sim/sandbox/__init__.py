"""A sandbox town for generative agents (a simulation): areas, objects with states, agents with locations and a game clock.

After the Smallville sandbox of Park et al. (2023), reduced to what the agents' perceive,
move and act loop needs; every place and person in it is fictional. ``load_world`` reads a
WORLD.json, ``bundled_world("party")`` gives the shipped three-agent Valentine's Day party
town and ``bundled_world("smallville")`` the 25-agent town with the party and a mayoral
candidacy to spread, and ``WorldStore`` saves and resumes a run in the SQLite file the
memory streams share.
"""

from stepwise.sim.sandbox.errors import WorldError, WorldStoreError
from stepwise.sim.sandbox.spec import (
    Agent,
    Area,
    Clock,
    Event,
    GameObject,
    Relationship,
    WorldSpec,
    parse_world_spec,
    read_world_spec,
    world_spec_from_json,
)
from stepwise.sim.sandbox.store import StepLogEntry, WorldStore, format_step_log
from stepwise.sim.sandbox.world import (
    DEFAULT_RADIUS,
    Perception,
    SandboxWorld,
    bundled_world,
    load_world,
)

__all__ = [
    "DEFAULT_RADIUS",
    "Agent",
    "Area",
    "Clock",
    "Event",
    "GameObject",
    "Perception",
    "Relationship",
    "SandboxWorld",
    "StepLogEntry",
    "WorldError",
    "WorldSpec",
    "WorldStore",
    "WorldStoreError",
    "bundled_world",
    "format_step_log",
    "load_world",
    "parse_world_spec",
    "read_world_spec",
    "world_spec_from_json",
]
