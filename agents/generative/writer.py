"""The one writer of a concurrent world step: the agents' branches run on threads, what
their memory streams write to SQLite is held back, and the step's own thread writes it,
agent by agent in name order, once every branch is done.

A memory's id is its position in its own agent's stream, and a branch adds to its own
agent's stream only, so ids (which prompts show) never depend on which branch finished
first. Holding the writes back keeps the connection to one thread and puts the rows in
the order a serial step writes them (all of one agent's, then the next's), so the
database is the same byte for byte at any concurrency. The streams' in-memory columns are
written at once, as in a serial step: a branch reads its own memories back immediately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from stepwise.agents.generative.mind import Mind


class Table(Protocol):
    """What a memory stream writes through (``stepwise.memory.stream_db.StreamTable``)."""

    def insert(self, rows: Iterable[Any]) -> None: ...

    def touch(self, ids: Iterable[int], accessed: datetime) -> None: ...


class HeldTable:
    """A stream's table whose writes wait, in the order they were made, for ``write``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.held: list[tuple[str, tuple]] = []

    def insert(self, rows: Iterable[Any]) -> None:
        self.held.append(("insert", (list(rows),)))

    def touch(self, ids: Iterable[int], accessed: datetime) -> None:
        self.held.append(("touch", ([int(i) for i in ids], accessed)))

    def write(self) -> None:
        for method, args in self.held:
            getattr(self.table, method)(*args)
        self.held.clear()


class StepWriter:
    """Holds back the writes of every agent's stream from creation until ``write`` (or
    ``release``, which drops them: a step that failed rolls back anyway)."""

    def __init__(self, minds: Mapping[str, Mind]) -> None:
        self.streams = {name: minds[name].stream for name in sorted(minds)}
        self.tables: dict[str, HeldTable] = {}
        for name, stream in self.streams.items():
            table = stream._table  # the stream writes only through this attribute
            if table is not None:
                self.tables[name] = HeldTable(table)
                stream._table = self.tables[name]

    def write(self) -> None:
        """Write what was held, agent by agent in name order; the streams write directly
        again afterwards (what follows the branches runs on one thread)."""
        try:
            for name in sorted(self.tables):
                self.tables[name].write()
        finally:
            self.release()

    def release(self) -> None:
        """Give every stream its own table back; whatever is still held is dropped."""
        for name, held in self.tables.items():
            self.streams[name]._table = held.table  # type: ignore[assignment]
        self.tables.clear()
