"""Memory streams in SQLite: many agents' streams in one file, beside other tables.

The sandbox world keeps its state in one SQLite file and hands its connection to every
agent's stream, so rows carry the agent's name and the table has a name of its own. A
connection given by someone else is theirs: its settings are left alone, and a write made
while its owner has a transaction open joins that transaction (it commits or rolls back
with the owner's; after a rollback the stream object still holds what it added, so reopen
it). Embeddings are stored as little-endian float32 blobs, times as ISO 8601.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy

from stepwise.errors import StepwiseError
from stepwise.transactions import connect_wal, transaction

TABLE = "memory_stream"
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    agent TEXT NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, kind TEXT NOT NULL,
    importance REAL NOT NULL, created TEXT NOT NULL, last_accessed TEXT NOT NULL,
    depth INTEGER NOT NULL, evidence TEXT NOT NULL, embedding BLOB NOT NULL,
    PRIMARY KEY (agent, id))"""
FLOAT32 = numpy.dtype("<f4")


class MemoryStreamError(StepwiseError):
    """A memory-stream file that cannot be opened or written, or stored rows that are damaged."""


@dataclass(frozen=True)
class StoredRow:
    """One memory as stored; ``embedding`` is a float32 vector."""

    id: int
    text: str
    kind: str
    importance: float
    created: datetime
    last_accessed: datetime
    depth: int
    evidence: tuple[int, ...]
    embedding: numpy.ndarray


class StreamTable:
    """One agent's rows of the ``memory_stream`` table, in a file or a shared connection."""

    def __init__(self, db: str | Path | sqlite3.Connection, agent: str) -> None:
        if not isinstance(agent, str) or not agent:
            raise ValueError(f"an agent name is a non-empty string, not {agent!r}")
        self.agent = agent
        self.owned = not isinstance(db, sqlite3.Connection)
        self.where = str(db) if self.owned else "the shared connection"
        try:
            if isinstance(db, sqlite3.Connection):
                self.connection = db
            else:
                self.connection = connect_wal(Path(db))
            with self._transaction("create the memory stream table"):
                self.connection.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise MemoryStreamError(f"cannot use {self.where} for memory streams: {exc}") from None

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:  # inside the owner's transaction, ours commits with it
            with transaction(self.connection, savepoint="memory_stream") as db:
                yield db
        except sqlite3.Error as exc:
            raise MemoryStreamError(f"cannot {doing} for agent {self.agent!r} in "
                                    f"{self.where}: {exc}") from None

    def load(self) -> list[StoredRow]:
        """The agent's memories in id order (ids are 0, 1, 2, ... without gaps)."""
        with self._transaction("read memories"):
            rows = self.connection.execute(
                f"SELECT id, text, kind, importance, created, last_accessed, depth, evidence, "
                f"embedding FROM {TABLE} WHERE agent = ? ORDER BY id", (self.agent,)).fetchall()
        stored = []
        try:
            for position, (memory_id, text, kind, importance, created, accessed, depth,
                           evidence, blob) in enumerate(rows):
                if memory_id != position:
                    raise ValueError(f"memory ids skip from {position - 1} to {memory_id}")
                stored.append(StoredRow(
                    memory_id, text, kind, float(importance), datetime.fromisoformat(created),
                    datetime.fromisoformat(accessed), int(depth),
                    tuple(int(i) for i in json.loads(evidence)),
                    numpy.frombuffer(blob, dtype=FLOAT32)))
        except (ValueError, TypeError) as exc:
            raise MemoryStreamError(f"the memory stream of agent {self.agent!r} in "
                                    f"{self.where} is damaged: {exc}") from None
        return stored

    def insert(self, rows: Iterable[StoredRow]) -> None:
        values = [(self.agent, row.id, row.text, row.kind, row.importance,
                   row.created.isoformat(), row.last_accessed.isoformat(), row.depth,
                   json.dumps(list(row.evidence)),
                   numpy.ascontiguousarray(row.embedding, dtype=FLOAT32).tobytes())
                  for row in rows]
        with self._transaction("store memories") as db:
            db.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def touch(self, ids: Iterable[int], accessed: datetime) -> None:
        """Record that memories ``ids`` were retrieved at ``accessed``."""
        when = accessed.isoformat()
        with self._transaction("record memory access") as db:
            db.executemany(f"UPDATE {TABLE} SET last_accessed = ? WHERE agent = ? AND id = ?",
                           [(when, self.agent, int(i)) for i in ids])

    def close(self) -> None:
        """Close the file when this table opened it; a shared connection stays open."""
        if self.owned:
            self.connection.close()
