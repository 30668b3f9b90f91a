"""Where agent runs keep their checkpoints, so they resume by thread id after a kill.

LangGraph writes a checkpoint after every step; with an SQLite file the run survives
the process. The command line uses one by default; Python callers pick any checkpointer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from stepwise.errors import StepwiseError

DEFAULT_CHECKPOINTS = Path(".stepwise") / "checkpoints.sqlite"


def sqlite_checkpointer(path: str | Path = DEFAULT_CHECKPOINTS) -> SqliteSaver:
    """An SQLite checkpointer on ``path`` (created with its folder when missing)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(connection)
        saver.setup()
    except (OSError, sqlite3.Error) as exc:
        raise StepwiseError(f"cannot use {path} for checkpoints: {exc}") from None
    return saver
