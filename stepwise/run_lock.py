"""One writer per run folder: a command that writes a run holds an OS lock on it meanwhile.

Two writers on one folder would interleave what they write (an explore logs each iteration
twice, a simulation's steps collide in its database); a second one is refused at once, in
one line naming the holder's pid. The lock is an ``flock`` on a file in the folder, so a
killed holder (SIGKILL included) leaves no stale lock; the pid is written in the file only
to name the holder in the refusal. Readers take no lock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from stepwise.errors import StepwiseError

try:
    import fcntl
except ImportError:  # no flock on this system: runs go unlocked
    fcntl = None  # type: ignore[assignment]

ADVICE = "wait for it to finish or use another --out"
_shared: dict[Path, int] = {}  # lock file -> the thread holding it shareably in this process
_shared_guard = threading.Lock()


class RunInUse(StepwiseError):
    """A run folder another process (or thread) is writing to right now."""


class RunLock:
    """The held lock of one run folder; ``release`` (or leaving its ``with``, or the process
    ending) frees it. An unlocked hold (no ``flock`` here, or a hold shared with an outer one)
    releases nothing."""

    def __init__(self, fd: int | None = None, shared_key: Path | None = None) -> None:
        self._fd, self._shared_key = fd, shared_key

    def release(self) -> None:
        if self._shared_key is not None:
            with _shared_guard:
                _shared.pop(self._shared_key, None)
            self._shared_key = None
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def lock_run(folder: str | Path, lock_name: str, holder: str, advice: str = ADVICE, *,
             shared_in_thread: bool = False) -> RunLock:
    """Take ``folder``'s writer lock ``lock_name`` (making the folder), or raise ``RunInUse``
    at once: "<folder> is in use by another <holder> (pid N); <advice>".

    With ``shared_in_thread``, a lock taken again by the thread holding it (a command holds
    the folder, then the library call it makes does) shares that hold instead of refusing
    itself; any other thread or process is still refused.
    """
    folder = Path(folder)
    if fcntl is None:
        return RunLock()
    key = (folder / lock_name).resolve()
    if shared_in_thread:
        with _shared_guard:
            if _shared.get(key) == threading.get_ident():
                return RunLock()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / lock_name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StepwiseError(f"cannot use {folder} as a run folder: {exc.strerror or exc}"
                            ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 64, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise RunInUse(f"{folder} is in use by another {holder} (pid {pid}); {advice}"
                       ) from None
    except OSError:  # a filesystem without locks: the run goes unlocked, as without flock
        os.close(fd)
        return RunLock()
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    if not shared_in_thread:
        return RunLock(fd)
    with _shared_guard:
        _shared[key] = threading.get_ident()
    return RunLock(fd, key)
