"""One writer per simulation run folder: ``simulate`` holds an OS lock while it works.

Two writers on one run would interleave their steps in the database and the step log; a
second one is refused at once instead of failing on SQLite's "database is locked" after a
wait. The lock is an ``flock`` on ``simulate.lock``, so a killed holder (SIGKILL included)
leaves no stale lock; the holder's pid is written in the file only to name it in the
refusal. Readers (``memory``, ``interview``) take no lock: they read a snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

from stepwise.errors import StepwiseError

try:
    import fcntl
except ImportError:  # no flock on this system: runs go unlocked
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "simulate.lock"


class RunInUse(StepwiseError):
    """A run folder another simulation is writing to right now."""


class RunLock:
    """The held lock of one run folder; ``release`` (or the process ending) frees it."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None


def lock_run(folder: Path) -> RunLock:
    """Take ``folder``'s writer lock (making the folder), or raise ``RunInUse`` at once."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return RunLock(None)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StepwiseError(f"cannot use {folder} as a run folder: {exc.strerror or exc}"
                            ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise RunInUse(f"{folder} is in use by another simulation (pid {holder}); wait for "
                       "it to finish or use another --out") from None
    except OSError:  # a filesystem without locks: the run goes unlocked, as without flock
        os.close(fd)
        return RunLock(None)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return RunLock(fd)
