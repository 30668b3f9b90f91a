"""The explorer's append-only event log: one JSON line per finished iteration.

The tree is never pickled or overwritten mid-run: each iteration appends what it created
and what it backed up, written through to the operating system at once, so a run killed at
any moment (SIGKILL included) is rebuilt exactly by replaying the lines. A last line torn
by the kill is dropped on load and its iteration simply runs again (one whole but for its
newline is kept). Each line keeps its iteration index (``i``: the iterations done before
it), so a replay applies every iteration once even where two writers logged it twice; the
run folder's lock (``run.hold_run``) keeps a second writer out in the first place.

The file stays open while a search appends, and is fsynced at most every ``sync_seconds``
and on ``close``, not after every line: an fsync costs milliseconds (3 ms measured on the
machine the benchmarks ran on, more than a dozen zero-latency model calls), and a process
that is killed loses nothing written before. Only a power cut or a kernel crash can lose
the last ``sync_seconds`` of iterations, which a resume then runs again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from stepwise.errors import StepwiseError
from stepwise.jsonl import JsonlError, read_jsonl

SYNC_SECONDS = 1.0


class EventLog:
    def __init__(self, path: str | Path | None, sync_seconds: float = SYNC_SECONDS) -> None:
        self.path = Path(path) if path is not None else None
        self.sync_seconds = sync_seconds
        self._handle: IO[str] | None = None
        self._synced = 0.0  # when the file was last fsynced (time.monotonic)

    def read(self) -> list[dict[str, Any]]:
        """The complete events written so far, one per line (a torn last line is cut off the
        file). A whole line that is no event (binary, edited) is an error naming the line:
        cutting it and every line after it would silently drop finished iterations."""
        if self.path is None or not self.path.is_file():
            return []
        torn: list[int] = []
        try:
            rows = read_jsonl(self.path, on_torn_last_line=torn.append)
        except JsonlError as exc:
            raise StepwiseError(f"{self.path}:{exc.line}: not an iteration this search logged "
                                f"({exc.why}); delete the file to search the task again") from None
        self._end_last_line(torn=bool(torn))
        return [event for _, event in rows]

    def _end_last_line(self, torn: bool) -> None:
        """Make the next append start a line: a last line torn by a kill is cut off the file
        (its iteration runs again); a whole one that lacks only its newline gets it."""
        assert self.path is not None
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        with self.path.open("r+b") as handle:
            if torn:
                handle.truncate(data.rfind(b"\n") + 1)
            else:
                handle.seek(len(data))
                handle.write(b"\n")

    def append(self, event: dict[str, Any]) -> None:
        """Write one event as a line, through to the OS; fsync when ``sync_seconds`` have
        passed since the last one."""
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            self._synced = time.monotonic()
        line = json.dumps(event, ensure_ascii=False) + "\n"  # key order kept, as templates see it
        self._handle.write(line)
        self._handle.flush()
        if time.monotonic() - self._synced >= self.sync_seconds:
            self._sync()

    def _sync(self) -> None:
        assert self._handle is not None
        os.fsync(self._handle.fileno())
        self._synced = time.monotonic()

    def close(self) -> None:
        """Fsync and close the file (a search that ends, or fails, closes its log)."""
        if self._handle is None:
            return
        try:
            self._sync()
        finally:
            self._handle.close()
            self._handle = None
