"""One SQLite connection and transaction shape for every store.

A store's connection is in autocommit mode on a write-ahead-logged file (``connect_wal``),
so its transactions are explicit: BEGIN ... COMMIT on a connection of its own, or a
SAVEPOINT inside a transaction the connection's owner already has open (the world, the
memory streams and the run share one file and commit each step together). Either way a
failure undoes exactly what the block wrote; callers wrap ``sqlite3.Error`` in their own
one-line errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect_wal(path: Path, *, synchronous: str | None = "NORMAL",
                check_same_thread: bool = True) -> sqlite3.Connection:
    """An autocommit connection to ``path`` (its folder made) in WAL mode. With WAL,
    ``synchronous=NORMAL`` may lose the last commit in a power cut, never half of one;
    None keeps SQLite's FULL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), isolation_level=None,
                                 check_same_thread=check_same_thread)
    connection.execute("PRAGMA journal_mode=WAL")
    if synchronous is not None:
        connection.execute(f"PRAGMA synchronous={synchronous}")
    return connection


def _undo(db: sqlite3.Connection, joined: bool, savepoint: str) -> None:
    if joined:
        db.execute(f"ROLLBACK TO {savepoint}")
        db.execute(f"RELEASE {savepoint}")
    else:
        db.execute("ROLLBACK")


@contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN", savepoint: str = "stepwise",
                *, keep: bool = True) -> Iterator[sqlite3.Connection]:
    """``begin`` (e.g. ``BEGIN IMMEDIATE`` for writers) ... COMMIT, or a savepoint when
    ``db`` is already inside a transaction; rolled back when the block raises, and always
    when ``keep`` is False (a look that must leave the database as it was)."""
    joined = db.in_transaction
    db.execute(f"SAVEPOINT {savepoint}" if joined else begin)
    try:
        yield db
    except BaseException:
        _undo(db, joined, savepoint)
        raise
    if keep:
        db.execute(f"RELEASE {savepoint}" if joined else "COMMIT")
    else:
        _undo(db, joined, savepoint)
