"""Thread budgets: how many CPU threads torch, BLAS and tokenizers may use in this process.

Every numeric library sizes its thread pool to every core of the machine, and an explorer
runs several tasks with several simulations each, all in one process: N callers x all the
cores oversubscribes it, and beside other work (a trainer, a server) even one caller does.
An OpenMP or BLAS team that cannot get all of its cores stalls at every barrier for a
scheduler time slice, so a product that takes microseconds alone can take milliseconds,
and a loop runs many times slower with more threads than with one.

``plan_threads`` is the arithmetic: the cores this process may use, less those other
processes keep busy, shared out between the callers (workers x parallel simulations), at
least one thread each; an explicit count (``--threads``, else ``OMP_NUM_THREADS``) is taken
as given. ``thread_budget`` measures the machine and plans; ``ThreadBudget.apply`` sets
the pools already loaded and the environment that libraries loaded later, and child
processes, read. ``single_blas_thread`` keeps a small product (a retrieval over a few
thousand memories) off the BLAS pool altogether.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.wording import plural

# The variables each library reads for its pool size when it starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "RAYON_NUM_THREADS")  # RAYON_NUM_THREADS: the tokenizers' pool
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUSY_SAMPLE_SECONDS = 0.1


@dataclass(frozen=True)
class ThreadBudget:
    """Threads per caller, and what they were decided from."""

    threads: int  # for each caller's torch, BLAS and tokenizer work
    callers: int  # threads that call into those libraries at once: workers x parallel
    cores: int  # cores this process may use
    busy: float  # of those, how many other processes kept busy when it was planned
    source: str  # "auto", "--threads" or "OMP_NUM_THREADS"

    @property
    def oversubscribed(self) -> bool:
        """Whether callers x threads asks for more cores than there are (only an explicit
        count can; the callers alone may outnumber the cores, at one thread each)."""
        return self.callers * self.threads > max(self.cores, self.callers)

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (or a library not loaded yet) this
        budget; tokenizers lose their pool entirely at one thread."""
        values = {name: str(self.threads) for name in THREAD_VARIABLES}
        if self.threads == 1:
            values["TOKENIZERS_PARALLELISM"] = "false"
        return values

    def apply(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Hold this process to the budget: the environment for what starts later, and the
        torch and BLAS pools already loaded (torch is not imported here: it reads
        ``OMP_NUM_THREADS`` when it is)."""
        (os.environ if environ is None else environ).update(self.environment())
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(self.threads)
        for library in blas_libraries():
            library.set_threads(self.threads)

    def describe(self) -> str:
        """One line for a log: the count and why."""
        if self.source != "auto":
            return f"threads: {self.threads} per caller ({self.source})"
        return (f"threads: {self.threads} per caller ({plural(self.callers, 'caller')} on "
                f"{plural(self.cores, 'core')}, {self.busy:.1f} busy with other work)")


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StepwiseError(f"{name} must be a whole number of at least 1 (got {value!r})")
    return value


def _environment_threads(environ: Mapping[str, str]) -> int | None:
    """``OMP_NUM_THREADS`` as a count (its first level when it lists several), or None."""
    text = environ.get("OMP_NUM_THREADS", "").strip()
    if not text:
        return None
    first = text.split(",", 1)[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise StepwiseError(f"OMP_NUM_THREADS={text!r} is not a positive whole number")
    return int(first)


def plan_threads(workers: int = 1, parallel: int = 1, threads: int | None = None, *,
                 cores: int, busy: float = 0.0,
                 environ: Mapping[str, str] | None = None) -> ThreadBudget:
    """The budget for ``workers`` tasks with ``parallel`` simulations each on ``cores``
    cores of which other processes keep ``busy`` busy.

    Automatic: ``round(cores - busy)`` free cores (at least one) shared out evenly, so
    callers x threads never exceeds the cores. ``threads``, else ``OMP_NUM_THREADS`` in
    ``environ``, is taken as given.
    """
    callers = _positive("--workers", workers) * _positive("--parallel", parallel)
    cores = _positive("cores", cores)
    if threads is not None:
        return ThreadBudget(_positive("--threads", threads), callers, cores, busy, "--threads")
    chosen = _environment_threads(environ or {})
    if chosen is not None:
        return ThreadBudget(chosen, callers, cores, busy, "OMP_NUM_THREADS")
    free = max(1, round(cores - max(0.0, busy)))
    return ThreadBudget(max(1, free // callers), callers, cores, busy, "auto")


def thread_budget(workers: int = 1, parallel: int = 1, threads: int | None = None
                  ) -> ThreadBudget:
    """``plan_threads`` for this machine now: its usable cores, how busy they are (sampled
    for a tenth of a second, only when the count is not given) and this environment."""
    cores = usable_cores()
    busy = 0.0
    if threads is None and _environment_threads(os.environ) is None:
        busy = busy_cores(BUSY_SAMPLE_SECONDS)
    return plan_threads(workers, parallel, threads, cores=cores, busy=busy, environ=os.environ)


# -- the machine -----------------------------------------------------------------------


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The cores this process may run on: its CPU affinity (``os.cpu_count`` where there
    is none), capped by a container's CPU quota."""
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count() or 1
    quota = cgroup_quota_cores(cgroup_root)
    return max(1, min(count, quota) if quota is not None else count)


def cgroup_quota_cores(root: Path = CGROUP_ROOT) -> int | None:
    """A CPU quota as whole cores (rounded up), from cgroup v2 ``cpu.max`` or v1
    ``cpu.cfs_quota_us``; None where there is none or it cannot be read."""
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = (v2.read_text().split() + ["100000"])[:2]  # "max 100000"
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.exists():
            quota_us = int(v1.read_text())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


def cpu_times(stat_text: str, cpus: Sequence[int] | None = None) -> tuple[int, int]:
    """(busy, total) jiffies summed over ``cpus`` (all: None) from ``/proc/stat`` text."""
    busy = total = 0
    wanted = None if cpus is None else {f"cpu{cpu}" for cpu in cpus}
    for line in stat_text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or (wanted and name not in wanted):
            continue
        values = [int(value) for value in fields[:8]]  # user .. steal; guest is in user
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        busy += sum(values) - idle
        total += sum(values)
    return busy, total


def busy_fraction_cores(before: tuple[int, int], after: tuple[int, int], cpus: int) -> float:
    """Cores kept busy between two ``cpu_times`` readings of ``cpus`` cores."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return 0.0 if total <= 0 else cpus * busy / total


def busy_cores(seconds: float = BUSY_SAMPLE_SECONDS) -> float:
    """How many of this process's cores other work keeps busy, sampled over ``seconds``
    (this process sleeps meanwhile); 0 where ``/proc/stat`` cannot be read."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        before = cpu_times(Path("/proc/stat").read_text(), cpus)
        time.sleep(seconds)
        after = cpu_times(Path("/proc/stat").read_text(), cpus)
    except (OSError, ValueError):
        return 0.0
    return busy_fraction_cores(before, after, len(cpus) if cpus else (os.cpu_count() or 1))


# -- small products off the BLAS pool --------------------------------------------------


class BlasLibrary:
    """One loaded BLAS library's thread count, read and set from any thread.

    OpenBLAS 0.3.27 and later ignore ``openblas_set_num_threads`` from a thread other than
    the main one once the main thread has called it (measured with 0.3.31: the pool kept
    working), while ``openblas_set_num_threads_local`` takes effect from any thread; it is
    used where the library has it.
    """

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self._set_local = None
        if controller.internal_api == "openblas":
            function = getattr(controller.dynlib, "openblas_set_num_threads_local", None)
            if function is not None:
                function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
                self._set_local = function

    @property
    def threads(self) -> int:
        return int(self.controller.get_num_threads())

    @property
    def settable_from_any_thread(self) -> bool:
        """Whether a count set from a worker thread is known to take effect: OpenBLAS with
        its thread-local setter. For others (an older OpenBLAS, MKL, BLIS) it may not."""
        return self._set_local is not None

    def set_threads(self, count: int) -> None:
        if self._set_local is not None:
            self._set_local(count)
        else:
            self.controller.set_num_threads(count)


@functools.cache
def blas_libraries() -> tuple[BlasLibrary, ...]:
    """The BLAS libraries loaded (numpy's), found once with threadpoolctl: finding them
    walks every loaded library, setting them is a function call. None without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    import numpy  # noqa: F401 -- its BLAS is the one to find

    return tuple(BlasLibrary(controller) for controller
                 in ThreadpoolController().select(user_api="blas").lib_controllers)


_single_lock = threading.Lock()
_single_depth = 0
_saved_threads: list[int] = []


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """BLAS calls inside run on the calling thread alone (numpy's OpenBLAS; a library
    without a thread-local setter may keep its pool when entered from a worker thread).

    The count is process-wide, so nested and concurrent uses are counted: the first in
    sets one thread, the last out restores what was there. Without threadpoolctl,
    nothing is limited.
    """
    global _single_depth, _saved_threads
    libraries = blas_libraries()
    if not libraries:
        yield
        return
    with _single_lock:
        if _single_depth == 0:
            _saved_threads = [library.threads for library in libraries]
            for library in libraries:
                library.set_threads(1)
        _single_depth += 1
    try:
        yield
    finally:
        with _single_lock:
            _single_depth -= 1
            if _single_depth == 0:
                for library, count in zip(libraries, _saved_threads, strict=True):
                    library.set_threads(count)
