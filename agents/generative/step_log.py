"""``steps.jsonl``, the run's step log: a copy of lines the database already holds.

Each step's line is saved in the step's own transaction (table ``generative_steps``) and
appended to the file after the commit, so a kill between the two, or in the middle of an
append, loses nothing: a writer opening the run rewrites the file (atomically) whenever it
differs from the committed lines. Readers never write it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from stepwise.files import write_atomic
from stepwise.jsonl import jsonl_lines

SCHEMA = ("CREATE TABLE IF NOT EXISTS generative_steps (step INTEGER PRIMARY KEY, "
          "line TEXT NOT NULL)")


def log_line(entry: dict) -> str:
    """A step's log entry as its JSONL line (no newline)."""
    return json.dumps(entry, ensure_ascii=False)


def save_line(db: sqlite3.Connection, step: int, line: str) -> None:
    """Keep ``step``'s line in the database, inside the step's transaction."""
    db.execute("INSERT OR REPLACE INTO generative_steps VALUES (?, ?)", (step, line))


def committed_lines(db: sqlite3.Connection, steps: int) -> dict[int, str]:
    """The lines of the first ``steps`` steps the database holds, by step."""
    return dict(db.execute("SELECT step, line FROM generative_steps WHERE step < ?",
                           (steps,)))


def logged_lines(text: str) -> dict[int, str]:
    """The whole lines of a log file by step; a torn or garbled line is left out."""
    lines = {}
    for line in jsonl_lines(text):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            lines.setdefault(step, line)
    return lines


def repair(path: Path, committed: Mapping[int, str], steps: int) -> bool:
    """Make ``path`` hold one line per step taken, in order, each as committed; a step the
    database holds no line for (a run made before lines were kept there) keeps the file's
    own line. Rewritten atomically, and only when it differs; whether it did."""
    text = path.read_bytes().decode("utf-8", "replace") if path.exists() else None
    found = logged_lines(text or "")
    lines = [committed.get(step) or found.get(step) for step in range(steps)]
    wanted = "".join(line + "\n" for line in lines if line)
    if wanted == text:
        return False
    write_atomic(path, wanted)
    return True
