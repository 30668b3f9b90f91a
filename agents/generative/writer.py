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

from collections.abc import Mapping

from stepwise.agents.generative.mind import Mind


class StepWriter:
    """Holds back the writes of every agent's stream from creation until ``write`` (or
    ``release``, which drops them: a step that failed rolls back anyway)."""

    def __init__(self, minds: Mapping[str, Mind]) -> None:
        self.held = {name: held for name in sorted(minds)
                     if (held := minds[name].stream.hold_writes()) is not None}

    def write(self) -> None:
        """Write what was held, agent by agent in name order; the streams write directly
        again afterwards (what follows the branches runs on one thread)."""
        try:
            for name in sorted(self.held):
                self.held[name].write()
        finally:
            self.release()

    def release(self) -> None:
        """Let every stream write directly again; whatever is still held is dropped."""
        for held in self.held.values():
            held.release()
        self.held.clear()
