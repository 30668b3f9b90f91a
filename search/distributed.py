"""Exploring a dataset over a Ray cluster: one Ray task per search task.

The ``--ray ADDRESS`` path of ``stepwise explore``. It writes the same run folder as
``explore_tasks`` (``search/run.py``) and, for the same seed, the same bytes: every random
choice is seeded from (seed, task, node path), never from the process or the order in
which tasks finish, and pairs are rebuilt from the finished trees in task order.

Who writes what: a worker rebuilds the environments and the model from the picklable
``EnvSpec`` (once per worker process), searches one task, appending to
``events/<task>.jsonl`` as it goes (so a killed run resumes from it), and returns the tree
as JSON text; the driver writes ``trees/<task>.json`` atomically as results arrive, then
``pairs.jsonl`` and ``summary.json``. So **the run folder must be on a filesystem that the
driver and every worker see at the same path** (a local cluster trivially does; on a
multi-node cluster, a shared mount such as NFS). The dataset (and a ``replay:`` or ``hf:``
model path) must be reachable at the same path too; relative paths are made absolute here.

Each worker process has its own model and request cache: ``max_concurrent`` bounds the calls
in flight per worker process, not over the cluster, and the model call counts in the summary
are summed over workers, so ``saved`` depends on how tasks were placed (the trees do not).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.files import write_atomic
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import PairOptions, RunReport, finish_run, safe_name

MISSING_RAY = "--ray needs the distributed extra: pip install 'stepwise[distributed]'"


def import_ray() -> Any:
    """Ray, or a clear error saying how to get it."""
    try:
        import ray
    except ImportError as error:
        raise StepwiseError(MISSING_RAY) from error
    return ray


# --- the worker side ------------------------------------------------------------------

# Per worker process: a spec's (make_env, cached model), built on the first task it runs.
_FACTORIES: dict[Any, tuple[Callable[[str], Any], Any]] = {}


def _factory(spec: Any) -> tuple[Callable[[str], Any], Any]:
    if spec not in _FACTORIES:
        _FACTORIES[spec] = spec.factory()
    return _FACTORIES[spec]


def search_task(spec: Any, task_id: str, options: ExploreOptions, out: str, env_name: str,
                simulated: bool) -> tuple[str, str, int, dict[str, int]]:
    """Search one task in this process: (task, tree JSON, iterations, model calls made)."""
    make_env, model = _factory(spec)
    before = dict(model.counts)  # a Ray worker runs one task at a time
    explorer = Explorer(make_env(task_id), options,
                        EventLog(Path(out) / "events" / f"{safe_name(task_id)}.jsonl"),
                        env_name=env_name, simulated=simulated)
    tree = explorer.run()
    after = model.counts
    return task_id, tree.to_json(), tree.root.visits, {
        key: after[key] - before.get(key, 0) for key in after}


# --- the driver side ------------------------------------------------------------------

def portable_spec(spec: Any) -> Any:
    """The spec with local relative paths made absolute, for workers in other folders."""
    update: dict[str, str] = {}
    if spec.env == "longmt" and Path(spec.dataset).exists():
        update["dataset"] = str(Path(spec.dataset).resolve())
    scheme, _, rest = spec.model.partition(":")
    if scheme in ("replay", "hf") and rest and Path(rest).exists():
        update["model"] = f"{scheme}:{Path(rest).resolve()}"
    return spec.model_copy(update=update) if update else spec


def connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Connect to Ray unless already connected; True when this call started the connection.

    ``"local"`` starts a private single-machine Ray (no dashboard, worker logs kept off the
    terminal); anything else (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``, None: Ray's
    own default) is passed to ``ray.init`` as the address.
    """
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return True


def explore_tasks_ray(spec: Any, task_ids: Sequence[str], options: ExploreOptions, out: Path,
                      *, address: str | None, env_name: str,
                      pair_options: PairOptions | None = None,
                      on_task_done: Callable[[str], None] | None = None,
                      simulated: bool = False, num_cpus: int | None = None) -> RunReport:
    """Search every task on a Ray cluster (finished ones are kept), then pairs and summary.

    ``spec`` is the run's ``EnvSpec``; each worker rebuilds its environments and model from
    it. ``on_task_done(task_id)`` is called on the driver once per task, in the order they
    finish (tasks finished by an earlier run first), so a bar of ``len(task_ids)`` ends full.
    ``num_cpus`` sizes a ``"local"`` Ray only (default: every core). A Ray connection that
    is already open (``ray.init`` called by the caller) is used as it is and left open.
    """
    ray = import_ray()
    started = time.perf_counter()
    out = Path(out).resolve()
    report = RunReport(tasks=len(task_ids))
    todo = [t for t in task_ids if not (out / "trees" / f"{safe_name(t)}.json").is_file()]
    for task_id in task_ids:
        if task_id not in todo and on_task_done:
            on_task_done(task_id)
    calls: dict[str, int] = {}
    if todo:
        opened = connect(ray, address, num_cpus)
        try:
            report.iterations = _search_all(ray, portable_spec(spec), todo, options, out,
                                            env_name, simulated, on_task_done, calls)
        finally:
            if opened:
                ray.shutdown()
    return finish_run(task_ids, out, pair_options or PairOptions(), report, started,
                      lambda: calls)


def _search_all(ray: Any, spec: Any, todo: Sequence[str], options: ExploreOptions, out: Path,
                env_name: str, simulated: bool, on_task_done: Callable[[str], None] | None,
                calls: dict[str, int]) -> int:
    remote = ray.remote(search_task)
    spec_ref = ray.put(spec)
    pending = {remote.remote(spec_ref, task_id, options, str(out), env_name, simulated): task_id
               for task_id in todo}
    iterations = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task_id = pending.pop(ready[0])
            try:
                _, tree_json, visits, counts = ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None)
                if isinstance(cause, StepwiseError):
                    raise StepwiseError(f"{task_id}: {cause}") from error
                raise
            write_atomic(out / "trees" / f"{safe_name(task_id)}.json", tree_json)
            iterations += visits
            for key, value in counts.items():
                calls[key] = calls.get(key, 0) + value
            if on_task_done:
                on_task_done(task_id)
    finally:
        for ref in pending:  # a failure or Ctrl-C: the event logs keep what was done
            ray.cancel(ref, force=True)
    return iterations
