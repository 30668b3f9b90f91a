"""A simulation run on disk: create it from a WORLD.json, take steps, stop, resume.

A run directory holds ``run.sqlite`` (the world's tables, every agent's memory stream,
the agents' plain state and the run's settings, all on one connection) and
``steps.jsonl`` (one line per world step). A step is one SQLite transaction: memories,
world and agent state are saved together or not at all, so a run stopped anywhere
resumes from its last whole step and goes on exactly as an uninterrupted run would
(given a model that answers the same prompts the same way).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from stepwise.agents.generative import dialogue, reflection
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.state import AgentState, WorldStepState, new_agent
from stepwise.agents.generative.step import Town, build_step_graph, take_step
from stepwise.errors import StepwiseError
from stepwise.jsonl import jsonl_lines
from stepwise.memory.stream import MemoryStream
from stepwise.sim.sandbox.store import WorldStore
from stepwise.sim.sandbox.world import DEFAULT_RADIUS, SandboxWorld, load_world

RUN_DB = "run.sqlite"
STEP_LOG = "steps.jsonl"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS generative_run (id INTEGER PRIMARY KEY CHECK (id = 1), "
     "settings_json TEXT NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS generative_agents (name TEXT PRIMARY KEY, "
     "state_json TEXT NOT NULL)"),
)


class RunError(StepwiseError):
    """A run directory that is missing, already used, or does not hold what is asked for."""


class RunSettings(BaseModel):
    """What a run keeps between sessions (the model is given anew each time)."""

    model_config = ConfigDict(extra="forbid")
    world: str = Field(description="the WORLD.json the run started from")
    radius: float = Field(default=DEFAULT_RADIUS, ge=0)
    max_turns: int = Field(default=dialogue.MAX_TURNS, ge=1)
    cooldown: int = Field(default=dialogue.COOLDOWN, ge=0)
    threshold: int = Field(default=reflection.THRESHOLD, ge=1)
    preset: str = "paper"


@dataclass
class Simulation:
    directory: Path
    db: sqlite3.Connection
    world: SandboxWorld
    store: WorldStore
    minds: dict[str, Mind]
    agents: dict[str, AgentState]
    settings: RunSettings

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def create(cls, world_file: str | Path, directory: str | Path, model: BaseChatModel, *,
               embeddings: Embeddings | None = None, **settings: Any) -> Simulation:
        """A new run of ``world_file`` in ``directory`` (which must not hold a run yet);
        the agents' seed memories are rated and stored."""
        directory = Path(directory)
        if (directory / RUN_DB).exists():
            raise RunError(f"{directory} already holds a run; resume it with --resume or "
                           "choose another --out")
        world = load_world(world_file)
        config = RunSettings(world=str(world_file), **settings)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STEP_LOG).write_text("")
        db = connect(directory / RUN_DB)
        run = cls.assemble(directory, db, world, model, embeddings, config,
                           {name: new_agent(name) for name in world.agents})
        try:
            with run.transaction():
                db.execute("INSERT INTO generative_run VALUES (1, ?)",
                           (config.model_dump_json(),))
                for name, spec in sorted(world.agents.items()):
                    remember(run.minds[name], run.agents[name], list(spec.memories),
                             now=world.now)
                run.save()
        except BaseException:
            db.close()  # a run that never started leaves nothing behind to resume
            for leftover in (RUN_DB, RUN_DB + "-wal", RUN_DB + "-shm", STEP_LOG):
                (directory / leftover).unlink(missing_ok=True)
            raise
        return run

    @classmethod
    def open(cls, directory: str | Path, model: BaseChatModel | None = None, *,
             embeddings: Embeddings | None = None) -> Simulation:
        """The run in ``directory`` as its last whole step left it."""
        directory = Path(directory)
        if not (directory / RUN_DB).is_file():
            raise RunError(f"no run in {directory} (expected {directory / RUN_DB}); "
                           "start one with stepwise simulate WORLD.json --out RUN")
        db = connect(directory / RUN_DB)
        store = WorldStore(db)
        world = store.load()
        row = db.execute("SELECT settings_json FROM generative_run").fetchone()
        if world is None or row is None:
            db.close()
            raise RunError(f"{directory / RUN_DB} holds no simulation run")
        agents = {name: json.loads(state) for name, state in
                  db.execute("SELECT name, state_json FROM generative_agents ORDER BY name")}
        run = cls.assemble(directory, db, world, model, embeddings,
                           RunSettings.model_validate_json(row[0]), agents)
        run.trim_step_log()
        return run

    @classmethod
    def assemble(cls, directory: Path, db: sqlite3.Connection, world: SandboxWorld,
                 model: BaseChatModel | None, embeddings: Embeddings | None,
                 settings: RunSettings, agents: dict[str, AgentState]) -> Simulation:
        areas = tuple(world.area_paths())
        minds = {name: Mind(name, spec.description, model,  # type: ignore[arg-type]
                            MemoryStream(embeddings, settings.preset, db=db, agent=name,
                                         clock=lambda: world.now), areas)
                 for name, spec in world.agents.items()}
        return cls(directory, db, world, WorldStore(db), minds, agents, settings)

    # -- running ------------------------------------------------------------------------

    @property
    def step_number(self) -> int:
        return self.world.step

    def agent(self, name: str) -> Mind:
        if name not in self.minds:
            known = ", ".join(sorted(self.minds))
            raise RunError(f"unknown agent {name!r} in this run (agents: {known})")
        return self.minds[name]

    def run(self, steps: int, on_step: Callable[[dict], None] | None = None) -> list[dict]:
        """Take ``steps`` world steps; each step's log entry, also passed to ``on_step``."""
        graph = build_step_graph()
        entries = []
        for _ in range(steps):
            entry = self.step(graph)
            entries.append(entry)
            if on_step:
                on_step(entry)
        return entries

    def step(self, graph=None) -> dict:
        """One world step in one transaction (the graph's persist node saves it), then the
        step's line in the log."""
        step, time = self.world.step, self.world.now
        entries: list[dict] = []

        def persist(result: WorldStepState) -> None:
            self.agents = result["agents"]
            entries.append(log_entry(step, time.isoformat(timespec="minutes"), result,
                                     self.world))
            self.save({name: note for name, note in entries[0]["notes"].items() if note})

        town = Town(self.world, self.minds, self.settings.radius, self.settings.max_turns,
                    self.settings.cooldown, self.settings.threshold, persist)
        with self.transaction():
            take_step(graph or build_step_graph(), town, step, self.agents)
        with (self.directory / STEP_LOG).open("a", encoding="utf-8") as log:
            log.write(json.dumps(entries[0], ensure_ascii=False) + "\n")
        return entries[0]

    # -- saving -------------------------------------------------------------------------

    def save(self, notes: dict[str, str] | None = None) -> None:
        self.store.save(self.world, notes)
        self.db.executemany(
            "INSERT INTO generative_agents VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "state_json = excluded.state_json",
            [(name, json.dumps(state, sort_keys=True)) for name, state in self.agents.items()])

    def transaction(self):
        return Transaction(self.db)

    def inspection(self):
        """A transaction that is always rolled back: looking at a run (retrieval marks
        memories as accessed) leaves it as it was."""
        return Transaction(self.db, keep=False)

    def trim_step_log(self) -> None:
        """Drop log lines of steps the database does not hold (a run stopped mid-step)."""
        path = self.directory / STEP_LOG
        lines = jsonl_lines(path.read_text("utf-8")) if path.exists() else []
        kept = [line for line in lines if line.strip() and
                json.loads(line).get("step", 0) < self.world.step]
        path.write_text("".join(line + "\n" for line in kept), "utf-8")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transaction:
    """BEGIN ... COMMIT on the run's connection; ROLLBACK when what it wraps fails."""

    def __init__(self, db: sqlite3.Connection, keep: bool = True) -> None:
        self.db, self.keep = db, keep

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.db.execute("COMMIT" if kind is None and self.keep else "ROLLBACK")


def connect(path: Path) -> sqlite3.Connection:
    """The run's one connection. LangGraph runs nodes on worker threads; steps run their
    nodes one at a time (see step.py), so the connection is shared across threads."""
    try:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA:
            db.execute(statement)
    except sqlite3.Error as exc:
        raise RunError(f"cannot use {path} for a run: {exc}") from None
    return db


def log_entry(step: int, time: str, result: WorldStepState, world: SandboxWorld) -> dict:
    """The JSONL line of a step: where each agent went and what it does, who talked, which
    reflections were written."""
    outcomes = {o["agent"]["name"]: o for o in result["outcomes"]}
    notes = {}
    for name, outcome in outcomes.items():
        talked = [other for c in result["conversations"] if name in c["pair"]
                  for other in c["pair"] if other != name]
        parts = [f"talked with {', '.join(talked)}"] if talked else []
        if outcome["reflected"]:
            parts.append(f"reflected ({len(outcome['reflected'])} insights)")
        notes[name] = "; ".join(parts)
    return {
        "step": step,
        "time": time,
        "agents": {name: {"location": world.agent(name).location,
                          "action": world.agent(name).action,
                          "reflections": outcomes[name]["reflected"]}
                   for name in sorted(outcomes)},
        "conversations": result["conversations"],
        "notes": notes,
    }
