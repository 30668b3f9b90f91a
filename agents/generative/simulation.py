"""A simulation run on disk: create it from a WORLD.json, take steps, stop, resume.

A run directory holds ``run.sqlite`` (the world's tables, every agent's memory stream,
the agents' plain state, each step's log line and the run's settings, all on one
connection), ``steps.jsonl`` (a copy of the log lines, see ``step_log.py``) and
``simulate.lock`` (one writer at a time, see ``stepwise/run_lock.py``). A step is one SQLite
transaction: memories, world, agent state and log line are saved together or not at all,
so a run killed anywhere resumes from its last whole step and goes on exactly as an
uninterrupted run would (given a model that answers the same prompts the same way). A run
exists once the transaction creating it commits; until then the folder holds none.
Readers look at a snapshot and never write.

The run's ``mechanisms`` are fixed when it is made: ``paper`` (the default) adds the
paper's area-tree walk, object states, summary descriptions, relationship summaries and
re-planning of the rest of the day; ``basic`` is the simpler loop runs were made with
before, and a run saved without the setting resumes as ``basic``, exactly as it went.
Every model request is counted in the step that asked it (``costs.py``).

``run`` takes a ``concurrency``: how many agents of a step think at once, on threads (their
model calls overlap; a server answers them together). It is a setting of the session, not
of the run: a run is the same byte for byte at any concurrency (``step.py``, ``writer.py``),
so a run may resume at another. The embedding model is used by one thread at a time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from stepwise.agents.generative import costs, dialogue, reflection, step_log
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.state import AgentState, WorldStepState, new_agent
from stepwise.agents.generative.step import PlanMemories, Town, build_step_graph, take_step
from stepwise.agents.generative.world_checks import check_room, read_world
from stepwise.agents.generative.writer import StepWriter
from stepwise.errors import StepwiseError
from stepwise.files import write_atomic
from stepwise.memory.embeddings import default_embeddings
from stepwise.memory.stream import MemoryStream
from stepwise.run_lock import RunLock, lock_run
from stepwise.sim.sandbox.store import WorldStore
from stepwise.sim.sandbox.world import DEFAULT_RADIUS, SandboxWorld
from stepwise.transactions import connect_wal, transaction

RUN_DB = "run.sqlite"
STEP_LOG = "steps.jsonl"
LOCK_NAME = "simulate.lock"
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
    cooldown: int | None = Field(default=None, ge=0, description="world steps before a pair "
                                 "talks again; None: an hour of game time")
    threshold: int = Field(default=reflection.THRESHOLD, ge=1)
    preset: str = "paper"
    mechanisms: Literal["paper", "basic"] = Field(
        default="paper", description="paper: with the area-tree walk, object states, summary "
        "descriptions, relationship summaries and re-planning; basic: without them")
    plan_memories: PlanMemories = Field(
        default="when planning", description="when the memories a day plan is made from "
        "are retrieved (and so marked accessed)")
    step_seconds: int | None = Field(default=None, gt=0, description="the game seconds one "
                                     "step lasts, in place of the world file's clock")

    def world_of(self, world: SandboxWorld) -> SandboxWorld:
        """``world`` (read from the world file) with this run's clock."""
        if self.step_seconds is None:
            return world
        spec = world.spec
        return SandboxWorld(spec.model_copy(
            update={"clock": spec.clock.with_step_seconds(self.step_seconds)}))

    def resolved(self, world: SandboxWorld) -> RunSettings:
        """These settings with the cool-down in steps of ``world``'s clock."""
        if self.cooldown is not None:
            return self
        return self.model_copy(update={"cooldown": dialogue.cooldown_steps(
            world.spec.clock.step)})

    @classmethod
    def stored(cls, text: str) -> RunSettings:
        """The settings a run saved; one saved before ``mechanisms`` existed is ``basic``,
        one saved before ``plan_memories`` retrieves them at every step, as it did."""
        data = json.loads(text)
        data.setdefault("mechanisms", "basic")
        data.setdefault("plan_memories", "every step")
        return cls.model_validate(data)


@dataclass
class Simulation:
    directory: Path
    db: sqlite3.Connection
    world: SandboxWorld
    store: WorldStore
    minds: dict[str, Mind]
    agents: dict[str, AgentState]
    settings: RunSettings
    lock: RunLock | None = None  # a writer's hold on the folder; readers have none
    ledger: costs.Ledger | None = None  # the requests of the step being taken

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def start(cls, world_file: str | Path, directory: str | Path, model: BaseChatModel, *,
              steps: int, resume: bool = False, embeddings: Embeddings | None = None,
              concurrency: int = 1, **settings: Any) -> Simulation:
        """The run of ``world_file`` in ``directory``, ready for ``steps`` more steps: the
        run there when ``resume`` and it holds one, else a new one. Decided under the
        folder's lock; a folder whose creation was cut short holds no run."""
        directory = Path(directory)
        config = RunSettings(world=str(world_file), **settings)
        as_written = read_world(world_file)
        world = config.world_of(as_written)
        check_room(world, steps, world_file)  # before anything is written
        config = config.resolved(world)
        lock, run = lock_writer(directory), None
        try:
            if resume and holds_run(directory):
                run = cls.load(directory, connect(directory / RUN_DB), model, embeddings, lock)
                if run.world.spec != run.settings.world_of(as_written).spec:
                    raise RunError(f"{directory} holds a run of world {run.world.name!r}, "
                                   f"not of {world_file}")
                check_room(run.world, steps, directory)
                run.repair_step_log()
            else:
                run = cls.begin(directory, world, model, embeddings, config, lock,
                                concurrency)
        except BaseException:
            if run is not None:
                run.close()  # its connection and the lock
            else:
                lock.release()
            raise
        return run

    @classmethod
    def create(cls, world_file: str | Path, directory: str | Path, model: BaseChatModel, *,
               embeddings: Embeddings | None = None, concurrency: int = 1,
               **settings: Any) -> Simulation:
        """A new run of ``world_file`` in ``directory`` (which must not hold a run yet);
        the agents' seed memories are rated (``concurrency`` agents at once) and stored."""
        directory = Path(directory)
        config = RunSettings(world=str(world_file), **settings)
        world = config.world_of(read_world(world_file))
        check_room(world, 0, world_file)
        config = config.resolved(world)
        lock = lock_writer(directory)
        try:
            return cls.begin(directory, world, model, embeddings, config, lock, concurrency)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def begin(cls, directory: Path, world: SandboxWorld, model: BaseChatModel,
              embeddings: Embeddings | None, config: RunSettings, lock: RunLock,
              concurrency: int = 1) -> Simulation:
        """Create the run under ``lock``. It exists once its one creating transaction
        commits; what a creation cut short left behind is cleared first."""
        if holds_run(directory):
            raise RunError(f"{directory} already holds a run; resume it with --resume or "
                           "choose another --out")
        clear(directory)
        db = connect(directory / RUN_DB)
        run = cls.assemble(directory, db, world, model, embeddings, config,
                           {name: new_agent(name) for name in world.agents}, lock)
        try:
            with run.transaction():
                db.execute("INSERT INTO generative_run VALUES (1, ?)",
                           (config.model_dump_json(),))
                run.seed(concurrency)
                run.save()
                run.ledger.save(db)
            write_atomic(directory / STEP_LOG, "")
        except BaseException:
            db.close()  # a run that never started leaves nothing behind to resume
            clear(directory)
            raise
        return run

    @classmethod
    def open(cls, directory: str | Path, model: BaseChatModel | None = None, *,
             embeddings: Embeddings | None = None) -> Simulation:
        """The run in ``directory`` as its last whole step left it, to go on with (the
        folder's writer lock is held until ``close``; the step log is repaired)."""
        directory = Path(directory)
        require_run(directory)
        lock, run = lock_writer(directory), None
        try:
            run = cls.load(directory, connect(directory / RUN_DB), model, embeddings, lock)
            run.repair_step_log()
        except BaseException:
            if run is not None:
                run.close()  # its connection and the lock
            else:
                lock.release()
            raise
        return run

    @classmethod
    def inspect(cls, directory: str | Path, model: BaseChatModel | None = None, *,
                embeddings: Embeddings | None = None) -> Simulation:
        """The run in ``directory`` as its last whole step left it, to look at: a snapshot
        copied into memory, so a simulation writing the run meanwhile neither blocks it nor
        sees anything it does, and the folder is left untouched."""
        directory = Path(directory)
        require_run(directory)
        snapshot = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            source = sqlite3.connect(str(directory / RUN_DB))
            try:
                source.backup(snapshot)
            finally:
                source.close()
        except sqlite3.Error as exc:
            snapshot.close()
            raise RunError(f"cannot read {directory / RUN_DB}: {exc}") from None
        return cls.load(directory, snapshot, model, embeddings)

    @classmethod
    def load(cls, directory: Path, db: sqlite3.Connection, model: BaseChatModel | None,
             embeddings: Embeddings | None, lock: RunLock | None = None) -> Simulation:
        """The run held in ``db`` (closed when it holds none)."""
        try:
            world = WorldStore(db).load()
            row = db.execute("SELECT settings_json FROM generative_run").fetchone()
            if world is None or row is None:
                raise RunError(no_run_message(directory))
            agents = {name: json.loads(state) for name, state in db.execute(
                "SELECT name, state_json FROM generative_agents ORDER BY name")}
            return cls.assemble(directory, db, world, model, embeddings,
                                RunSettings.stored(row[0]), agents, lock)
        except BaseException:
            db.close()
            raise

    @classmethod
    def assemble(cls, directory: Path, db: sqlite3.Connection, world: SandboxWorld,
                 model: BaseChatModel | None, embeddings: Embeddings | None,
                 settings: RunSettings, agents: dict[str, AgentState],
                 lock: RunLock | None = None) -> Simulation:
        paper = settings.mechanisms == "paper"
        # The paper's agents name a town-level area and walk down from it; the basic
        # ones name any area path of the town.
        areas = tuple(world.sub_areas() if paper else world.area_paths())
        ledger = costs.Ledger(lambda: world.now)
        serial = SerialEmbeddings(embeddings)
        minds = {name: Mind(name, spec.description, model,  # type: ignore[arg-type]
                            MemoryStream(serial, settings.preset, db=db, agent=name,
                                         clock=lambda: world.now), areas,
                            home=(spec.home or "") if paper else "",
                            summary=agents[name].get("summary", "") if paper else "",
                            ledger=ledger)
                 for name, spec in world.agents.items()}
        return cls(directory, db, world, WorldStore(db), minds, agents, settings, lock, ledger)

    def seed(self, concurrency: int = 1) -> None:
        """Rate and store every agent's seed memories, ``concurrency`` agents at once (their
        writes held back and made in name order, as a step's are: ``writer.py``)."""
        names = sorted(self.world.agents)

        def seed_one(name: str) -> None:
            remember(self.minds[name], self.agents[name],
                     list(self.world.agents[name].seed_memories), now=self.world.now)

        if concurrency <= 1:
            for name in names:
                seed_one(name)
            return
        writer = StepWriter(self.minds)
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(seed_one, names))
            writer.write()
        finally:
            writer.release()

    # -- running ------------------------------------------------------------------------

    @property
    def step_number(self) -> int:
        return self.world.step

    def agent(self, name: str) -> Mind:
        if name not in self.minds:
            known = ", ".join(sorted(self.minds))
            raise RunError(f"unknown agent {name!r} in this run (agents: {known})")
        return self.minds[name]

    def run(self, steps: int, on_step: Callable[[dict], None] | None = None, *,
            concurrency: int = 1) -> list[dict]:
        """Take ``steps`` world steps, ``concurrency`` agents thinking at once; each step's
        log entry, also passed to ``on_step``. Refused at once when the clock cannot reach
        the last of them."""
        check_room(self.world, steps, self.directory)
        graph = build_step_graph()
        entries = []
        for _ in range(steps):
            entry = self.step(graph, concurrency=concurrency)
            entries.append(entry)
            if on_step:
                on_step(entry)
        return entries

    def step(self, graph=None, *, concurrency: int = 1) -> dict:
        """One world step in one transaction (the graph's persist node saves it, the step's
        log line with it), then that line appended to the log file."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise RunError(f"concurrency is a number of agents >= 1, not {concurrency!r}")
        if self.lock is None:
            raise RunError(f"{self.directory} was opened to look at (a snapshot); open it "
                           "with Simulation.open to take steps")
        check_room(self.world, 1, self.directory)
        step, time = self.world.step, self.world.now
        entries: list[dict] = []

        def persist(result: WorldStepState) -> None:
            self.agents = result["agents"]
            entries.append(log_entry(step, self.world.spec.clock.stamp(time), result,
                                     self.world))
            self.save({name: note for name, note in entries[0]["notes"].items() if note})
            step_log.save_line(self.db, step, step_log.log_line(entries[0]))
            if self.ledger is not None:
                self.ledger.save(self.db)

        town = Town(self.world, self.minds, self.settings.radius, self.settings.max_turns,
                    self.settings.cooldown, self.settings.threshold,
                    self.settings.mechanisms == "paper", persist, concurrency,
                    plan_memories=self.settings.plan_memories)
        if self.ledger is not None:
            self.ledger.discard()  # requests made outside a step (interviews) are not its
        with self.transaction():
            take_step(graph or build_step_graph(), town, step, self.agents)
        with (self.directory / STEP_LOG).open("a", encoding="utf-8") as log:
            log.write(step_log.log_line(entries[0]) + "\n")
        return entries[0]

    def step_lines(self) -> list[dict]:
        """The committed step-log entries, in step order."""
        return [json.loads(line) for _, line in
                sorted(step_log.committed_lines(self.db, self.world.step).items())]

    def conversations(self) -> list[list[str]]:
        """The pair of every conversation held so far, in the order they were held."""
        return [c["pair"] for entry in self.step_lines() for c in entry["conversations"]]

    def cost_report(self) -> dict:
        """Requests, tokens and wall time per agent and per game hour (see costs.py)."""
        has_table = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                    "name = 'generative_costs'").fetchone()
        rows = costs.read_costs(self.db) if has_table else []
        return costs.cost_report(rows, self.world.agents)

    # -- saving -------------------------------------------------------------------------

    def save(self, notes: dict[str, str] | None = None) -> None:
        self.store.save(self.world, notes)
        self.db.executemany(
            "INSERT INTO generative_agents VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "state_json = excluded.state_json",
            [(name, json.dumps(state, sort_keys=True)) for name, state in self.agents.items()])

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on the run's connection; ROLLBACK when the block fails."""
        return transaction(self.db, "BEGIN IMMEDIATE")

    def inspection(self) -> AbstractContextManager[sqlite3.Connection]:
        """A transaction that is always rolled back: looking at a run (retrieval marks
        memories as accessed) leaves it as it was."""
        return transaction(self.db, "BEGIN IMMEDIATE", keep=False)

    def repair_step_log(self) -> bool:
        """Make the log file hold the committed steps' lines (a kill after a commit, or
        during an append, left it short or torn); whether it had to be rewritten."""
        return step_log.repair(self.directory / STEP_LOG,
                               step_log.committed_lines(self.db, self.world.step),
                               self.world.step)

    def close(self) -> None:
        self.db.close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialEmbeddings(Embeddings):
    """The run's embedding model, used by one thread at a time: the agents of a concurrent
    step share it, and a tokenizer or a torch model is not safe to call from several
    threads at once. ``None`` is the memory stream's default (loaded when first needed)."""

    def __init__(self, inner: Embeddings | None) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    def model(self) -> Embeddings:
        if self.inner is None:
            self.inner = default_embeddings()
        return self.inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            return self.model().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            return self.model().embed_query(text)


def lock_writer(directory: Path) -> RunLock:
    """Hold ``directory`` as its one writer; a second simulation there is refused at once
    (readers take no lock: they read a snapshot)."""
    return lock_run(directory, LOCK_NAME, "simulation")


def holds_run(directory: Path) -> bool:
    """Whether ``directory`` holds a run whose creation committed (a creation cut short
    leaves a database without the run's settings row, or none)."""
    path = directory / RUN_DB
    if not path.is_file():
        return False
    db = sqlite3.connect(str(path))  # reads only
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                          "name = 'generative_run'").fetchone():
            return False
        return db.execute("SELECT 1 FROM generative_run").fetchone() is not None
    except sqlite3.Error as exc:
        raise RunError(f"cannot use {path} for a run: {exc}") from None
    finally:
        db.close()


def no_run_message(directory: Path) -> str:
    return (f"{directory} holds no simulation run (its creation has not finished); start it "
            f"with stepwise simulate WORLD.json --out {directory}")


def require_run(directory: Path) -> None:
    """A ``RunError`` unless ``directory`` holds a run to open."""
    if not (directory / RUN_DB).is_file():
        raise RunError(f"no run in {directory} (expected {directory / RUN_DB}); "
                       "start one with stepwise simulate WORLD.json --out RUN")
    if not holds_run(directory):
        raise RunError(no_run_message(directory))


def clear(directory: Path) -> None:
    """Remove what a run that never committed left in ``directory``: its write-ahead log
    first, so a kill here never leaves one beside a database it does not belong to."""
    for leftover in (RUN_DB + "-wal", RUN_DB + "-shm", RUN_DB, STEP_LOG):
        (directory / leftover).unlink(missing_ok=True)


def connect(path: Path) -> sqlite3.Connection:
    """The run's one connection. LangGraph runs nodes on worker threads, one at a time
    whenever they write (see step.py), so the connection is shared across threads."""
    try:
        db = connect_wal(path, synchronous=None, check_same_thread=False)
        for statement in (*SCHEMA, step_log.SCHEMA, costs.SCHEMA):
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
