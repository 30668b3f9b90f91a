"""Saving a simulated sandbox world in SQLite, so a simulation stops and resumes.

One file holds one world and also the agents' memory streams, which get the same
connection; every table here is prefixed ``world_`` to keep out of their way. A save
writes the map (once), the clock, agent locations and actions, object states and one
step-log row per agent, in one transaction: a step is in the file entirely or not at all.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError

from stepwise.sim.sandbox.errors import WorldError, WorldStoreError
from stepwise.sim.sandbox.spec import WorldSpec
from stepwise.sim.sandbox.world import SandboxWorld
from stepwise.transactions import connect_wal, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS world_map (id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL, spec_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS world_clock (id INTEGER PRIMARY KEY CHECK (id = 1),
    step INTEGER NOT NULL, time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS world_agents (name TEXT PRIMARY KEY, location TEXT NOT NULL,
    action TEXT, object TEXT);
CREATE TABLE IF NOT EXISTS world_objects (path TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS world_step_log (step INTEGER NOT NULL, agent TEXT NOT NULL,
    time TEXT NOT NULL, location TEXT NOT NULL, action TEXT, object TEXT, note TEXT,
    PRIMARY KEY (step, agent));
"""
_SAVEPOINT = "world_store"


class StepLogEntry(BaseModel):
    """What one agent was doing at one step of the simulation, and where."""

    model_config = ConfigDict(frozen=True)

    step: int
    time: dt.datetime
    agent: str
    location: str
    action: str | None
    object: str | None
    note: str | None

    def line(self) -> str:
        doing = self.action or "doing nothing in particular"
        using = f" [using {self.object}]" if self.object else ""
        note = f" - {self.note}" if self.note else ""
        return (f"step {self.step} ({self.time:%Y-%m-%d %H:%M}) {self.agent} at "
                f"{self.location}: {doing}{using}{note}")


def format_step_log(world_name: str, entries: Sequence[StepLogEntry]) -> str:
    """The step log as text for people, headed as the simulation it is."""
    header = f"Step log of the simulated sandbox world {world_name!r} (a simulation)"
    return "\n".join([header, *(entry.line() for entry in entries)])


class WorldStore:
    """A simulated world's state in a SQLite file, or in a connection shared with others.

    Given a path, the store opens (WAL) and closes its own connection. Given a
    ``sqlite3.Connection``, it uses it as it is and never closes it; a save made while
    that connection is inside a transaction joins it (as a savepoint) and becomes durable
    when its owner commits, so world and memories can be saved together atomically.
    One file holds one world: saving a different map into it is refused.
    """

    def __init__(self, db: str | Path | sqlite3.Connection) -> None:
        self._owned = not isinstance(db, sqlite3.Connection)
        self.path = Path(db) if self._owned else None  # type: ignore[arg-type]
        self._connection: sqlite3.Connection | None = None if self._owned else db

    @property
    def _where(self) -> str:
        return str(self.path) if self.path is not None else "the world database"

    def _db(self) -> sqlite3.Connection:
        try:
            if self._connection is None:
                assert self.path is not None
                self._connection = connect_wal(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise WorldStoreError(f"cannot use {self._where} for a world: {exc}") from None
        return self._connection

    @contextmanager
    def _transaction(self, begin: str, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self._db(), begin, _SAVEPOINT) as db:
                yield db
        except sqlite3.Error as exc:
            raise WorldStoreError(f"cannot {doing} in {self._where}: {exc}") from None

    def save(self, world: SandboxWorld, notes: Mapping[str, str] | None = None) -> None:
        """Store the world's state and one step-log row per agent for its current step
        (``notes``: optional text per agent on what it did); saving a step again replaces
        its rows."""
        notes = dict(notes or {})
        for name in notes:
            world.agent(name)  # a WorldError for a name the world does not have
        state, time = world.state(), world.now.isoformat()
        with self._transaction("BEGIN IMMEDIATE", f"save world {world.name!r}") as db:
            # Inside the transaction, one statement at a time (executescript would commit
            # the owner's transaction), so tables rolled back with it are made again.
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT name, spec_json FROM world_map").fetchone()
            if row is None:
                db.execute("INSERT INTO world_map VALUES (1, ?, ?)",
                           (world.name, world.spec.model_dump_json()))
            elif self._spec(row[1]) != world.spec:
                raise WorldStoreError(f"{self._where} holds another world ({row[0]!r}); "
                                      f"save {world.name!r} in a new file")
            db.execute("INSERT INTO world_clock VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE "
                       "SET step = excluded.step, time = excluded.time", (world.step, time))
            db.executemany(
                "INSERT INTO world_agents VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "location = excluded.location, action = excluded.action, "
                "object = excluded.object",
                [(name, a["location"], a["action"], a["object"])
                 for name, a in state["agents"].items()])
            db.executemany(
                "INSERT INTO world_objects VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET "
                "state = excluded.state", list(state["objects"].items()))
            db.executemany(
                "INSERT OR REPLACE INTO world_step_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(world.step, name, time, a["location"], a["action"], a["object"],
                  notes.get(name)) for name, a in state["agents"].items()])

    def load(self) -> SandboxWorld | None:
        """The world as last saved, or None when nothing was saved here yet."""
        with self._transaction("BEGIN", "load the world") as db:
            row = _saved(db) and db.execute("SELECT spec_json FROM world_map").fetchone()
            if not row:
                return None
            spec = self._spec(row[0])
            clock = db.execute("SELECT step FROM world_clock").fetchone()
            agents = db.execute("SELECT name, location, action, object FROM world_agents")
            objects = db.execute("SELECT path, state FROM world_objects").fetchall()
            state = {
                "step": clock[0] if clock else None,
                "agents": {name: {"location": location, "action": action, "object": using}
                           for name, location, action, using in agents},
                "objects": dict(objects),
            }
        try:
            return SandboxWorld.from_state(spec, state)
        except WorldError as exc:
            raise WorldStoreError(f"the world saved in {self._where} is damaged: {exc}"
                                  ) from None

    def step_log(self, agent: str | None = None) -> list[StepLogEntry]:
        """Saved step-log rows by step then agent; only ``agent``'s when given."""
        query = "SELECT step, time, agent, location, action, object, note FROM world_step_log"
        query += " WHERE agent = ? ORDER BY step, agent" if agent else " ORDER BY step, agent"
        with self._transaction("BEGIN", "read the step log") as db:
            rows = db.execute(query, (agent,) if agent else ()).fetchall() if _saved(db) else []
        fields = ("step", "time", "agent", "location", "action", "object", "note")
        return [StepLogEntry(**dict(zip(fields, row, strict=True))) for row in rows]

    def close(self) -> None:
        """Close the connection this store opened (a connection it was given stays open)."""
        if self._owned and self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _spec(self, text: str) -> WorldSpec:
        try:
            return WorldSpec.model_validate_json(text)
        except ValidationError as exc:
            raise WorldStoreError(f"the world map saved in {self._where} is damaged: "
                                  f"{exc.errors()[0]['msg']}") from None


def _saved(db: sqlite3.Connection) -> bool:
    """Whether a world was ever saved here (reads must not create tables)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                      "name = 'world_step_log'").fetchone() is not None
