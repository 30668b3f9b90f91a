"""One SQLite transaction shape for every store: BEGIN ... COMMIT on a connection of its
own, or a SAVEPOINT inside a transaction the connection's owner already has open (the
world, the memory streams and the run share one file and commit each step together).
Either way a failure undoes exactly what the block wrote; callers wrap ``sqlite3.Error``
in their own one-line errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN",
                savepoint: str = "stepwise") -> Iterator[sqlite3.Connection]:
    """``begin`` (e.g. ``BEGIN IMMEDIATE`` for writers) ... COMMIT, or a savepoint when
    ``db`` is already inside a transaction; rolled back when the block raises."""
    joined = db.in_transaction
    db.execute(f"SAVEPOINT {savepoint}" if joined else begin)
    try:
        yield db
    except BaseException:
        if joined:
            db.execute(f"ROLLBACK TO {savepoint}")
            db.execute(f"RELEASE {savepoint}")
        else:
            db.execute("ROLLBACK")
        raise
    db.execute(f"RELEASE {savepoint}" if joined else "COMMIT")
