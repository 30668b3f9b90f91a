"""The explorer's append-only event log: one JSON line per finished iteration.

The tree is never pickled or overwritten mid-run: each iteration appends what it created
and what it backed up, flushed and fsynced, so a run killed at any moment (SIGKILL
included) is rebuilt exactly by replaying the lines. A last line torn by the kill is
dropped on load and its iteration simply runs again. Each line keeps its iteration index
(``i``: the iterations done before it), so a replay applies every iteration once even where
two writers logged it twice; the run folder's lock (``run.hold_run``) keeps a second writer
out in the first place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError


class EventLog:
    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None

    def read(self) -> list[dict[str, Any]]:
        """The complete events written so far, one per line (a torn last line is cut off the
        file). A whole line that is no event (binary, edited) is an error naming the line:
        cutting it and every line after it would silently drop finished iterations."""
        if self.path is None or not self.path.is_file():
            return []
        events, good_bytes = [], 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    break  # torn by a kill: cut off below, and its iteration runs again
                events.append(self._event(raw, number))
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)
        return events

    def _event(self, raw: bytes, number: int) -> dict[str, Any]:
        try:
            event = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            why = "not UTF-8 text"
        except json.JSONDecodeError as exc:
            why = f"not JSON: {exc.msg}"
        else:
            if isinstance(event, dict):
                return event
            why = "not a JSON object"
        raise StepwiseError(f"{self.path}:{number}: not an iteration this search logged ({why});"
                            " delete the file to search the task again")

    def append(self, event: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event, ensure_ascii=False) + "\n"  # key order kept, as templates see it
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
