"""Exploring a dataset: one search per task, resumable, with trees, pairs and a summary.

A run folder holds ``run.json`` (the settings; a resume must match them), per task an
append-only ``events/<task>.jsonl`` and, once the task is done, ``trees/<task>.json``;
``pairs.jsonl`` (rebuilt from the finished trees in task order, so an interrupted and an
uninterrupted run end with the same bytes) and ``summary.json`` (counts over the whole run,
every session's; the last session's apart). Every file but the event logs is written
atomically. ``explore.lock`` is held (an OS lock) while an explore works in
the folder, so a second one started beside it is refused instead of logging every
iteration twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic.dataclasses import dataclass as pydantic_dataclass

from stepwise.errors import MODEL_ERRORS, StepwiseError, error_line
from stepwise.files import write_atomic
from stepwise.jsonl import read_json
from stepwise.run_lock import lock_run
from stepwise.run_settings import check_saved_settings
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.pairs import check_prefix, decision_parents, extract_pairs, write_pairs
from stepwise.search.tree import commit_entropy, load_tree, visit_entropy

LOCK_NAME = "explore.lock"


PairScope = Literal["best_path", "all"]  # the parents pairs come from
PairFormat = Literal["preference", "stepwise"]  # DPO pairs, or TRL's stepwise-supervision rows
Negatives = Literal["worst", "closest", "both"]  # the rejected side: min-Q, the near miss, both


@pydantic_dataclass
class PairOptions:
    """How pairs are taken from the finished trees; a value outside a closed set is refused
    here, once, for every caller (the command line, the training loop, a Ray worker)."""

    min_visits: int = 1
    min_delta_q: float = 0.0
    scope: PairScope = "best_path"
    format: PairFormat = "preference"
    tokenizer: Any = None  # drops pairs whose prompt tokens are not a prefix of prompt+step
    negatives: Negatives = "worst"


@dataclass
class RunReport:
    """What one call did; ``summary.json`` holds the same over the whole run."""

    tasks: int = 0
    finished: int = 0
    iterations: int = 0
    pairs: int = 0
    seconds: float = 0.0
    pair_stats: dict[str, Any] = field(default_factory=dict)
    optimal_rates: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    visit_entropy: list[dict[str, Any]] = field(default_factory=list)
    model_calls: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # task -> its error line
    stopped: list[str] = field(default_factory=list)  # unfinished: a stop was asked for


class StopRequested(Exception):
    """Ends a task's search at the backup after a stop is asked for (it is logged); the
    simulations then in flight are dropped, and a resume runs them again."""


def safe_name(task_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)


@contextmanager
def hold_run(out: str | Path) -> Iterator[None]:
    """Hold the run folder's lock while exploring in it, or refuse at once if another
    explore holds it: two writers would log each iteration twice (see
    ``stepwise.run_lock``). A hold nested in the same thread (the CLI, then
    ``explore_tasks``) shares the outer one.
    """
    with lock_run(out, LOCK_NAME, "explore", "wait for it or use another --out",
                  shared_in_thread=True):
        yield


def check_settings(out: Path, settings: dict[str, Any], resume: bool) -> None:
    """A new run needs a fresh folder; a resumed one the same settings."""
    saved = out / "run.json"
    if saved.is_file():
        if not resume:
            raise StepwiseError(f"{out} already holds a run: add --resume to continue it, or "
                                "choose another --out")
        check_saved_settings(saved, settings, "run")
    elif resume and out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise StepwiseError(f"{out} holds no run to resume (no run.json)")
    write_atomic(saved, json.dumps(settings, ensure_ascii=False, sort_keys=True, indent=1))


def _is_best(meta: dict, side: str) -> bool:
    """Whether a pair's ``side`` action is among the best actions (ties kept), or, where
    the environment knows one best action only, is that action."""
    if meta.get("best_actions") is not None:
        return meta[f"{side}_action"] in meta["best_actions"]
    return meta[f"{side}_action"] == meta["optimal_action"]


def optimal_rates(rows: Sequence[dict]) -> dict[str, Any]:
    """How often chosen and rejected steps are among the environment's known best actions."""
    known = [r for r in rows if (r["meta"].get("optimal_action") is not None
                                 or r["meta"].get("best_actions") is not None)
             and "chosen_action" in r["meta"]]
    if not known:
        return {}
    chosen = sum(_is_best(r["meta"], "chosen") for r in known)
    rejected = sum(_is_best(r["meta"], "rejected") for r in known)
    return {"pairs_with_known_best": len(known), "chosen_is_best": chosen / len(known),
            "rejected_is_best": rejected / len(known)}


NO_PAIR_BECAUSE = {"one_action": "one_action", "too_few_visits": "too_few_children",
                   "all_children_equal_q": "no_preference", "below_min_delta_q": "below_delta_q",
                   "no_prompt": "no_prompt", "no_completion": "no_completion",
                   "same_completion": "same_completion",
                   "dropped_by_tokenizer": "dropped_by_tokenizer"}


def decision_report(stats: dict[str, int], unequal: list[int]) -> dict[str, Any]:
    """Decisions seen, decisions with a pair and why the others gave none; and, where the
    environment knows the best actions (a simulated world), the decisions at which not
    every searched action is best (``[seen, with a pair]``)."""
    report: dict[str, Any] = {
        "seen": stats.get("parents_seen", 0), "with_pair": stats.get("pairs", 0),
        "no_pair_because": {name: stats.get(key, 0) for name, key in NO_PAIR_BECAUSE.items()}}
    if unequal[0]:
        report["actions_differ"] = {"seen": unequal[0], "with_pair": unequal[1],
                                    "share": round(unequal[1] / unequal[0], 4)}
    return report


def _unequal_decisions(graph: Any, rows: Sequence[dict], scope: str,
                       min_visits: int) -> tuple[int, int]:
    """Decisions whose children's actions are not all among the known best ones, and how
    many of them gave a pair."""
    paired = {r["meta"].get("parent_id") for r in rows}
    seen = with_pair = 0
    for parent in decision_parents(graph, scope, min_visits):
        best = graph.nodes[parent].get("best_actions")
        actions = [graph.nodes[c].get("action") for c in graph.successors(parent)]
        if best is None or all(a in best for a in actions):
            continue
        seen += 1
        with_pair += parent in paired
    return seen, with_pair


def entropy_report(by_depth: dict[int, list[float]],
                   spine: dict[int, list[float]]) -> list[dict[str, Any]]:
    """Per depth: parents measured and their mean normalised visit entropy, and, when the
    search went step by step, the same for the committed decisions as they were committed
    (``spine_entropy``)."""
    rows = []
    for depth, values in sorted(by_depth.items()):
        row = {"depth": depth, "parents": len(values),
               "entropy": round(sum(values) / len(values), 4)}
        if spine.get(depth):
            row["spine_entropy"] = round(sum(spine[depth]) / len(spine[depth]), 4)
        rows.append(row)
    return rows


def explore_tasks(task_ids: Sequence[str], make_env: Callable[[str], Any], options: ExploreOptions,
                  out: Path, *, env_name: str, workers: int = 1,
                  pair_options: PairOptions | None = None,
                  on_iteration: Callable[[str, int], None] | None = None,
                  model_counts: Callable[[], dict[str, int]] | None = None,
                  simulated: bool = False,
                  on_failure: Callable[[str, str], None] | None = None,
                  stop: threading.Event | None = None) -> RunReport:
    """Search every task (finished ones are kept), then write pairs and the summary.

    Once ``stop`` is set (the first Ctrl-C), each task in search ends at its next backup
    and no other task starts; they are listed in ``report.stopped`` and a resumed run
    continues them from their event logs.

    A task that fails (its model times out, its event log is damaged: a ``StepwiseError``
    or one of ``MODEL_ERRORS``) is recorded in ``report.failed`` with its error line, and
    ``on_failure(task, line)`` is told; the other tasks go on. Its event log is kept, so a
    resumed run redoes only the failed tasks, from where they stopped. Any other exception
    is a bug in stepwise: it raises, and the tasks in search end at their next backup. The run
    folder is locked meanwhile (``hold_run``): a second explore on it is refused.
    """
    with hold_run(out):
        started = time.perf_counter()
        pair_options = pair_options or PairOptions()
        report = RunReport(tasks=len(task_ids))
        stopped: set[str] = set()
        broken = threading.Event()  # a bug raised in one task: the others end at a backup
        # workers x parallel rollouts at once, shared: a task may run more than ``parallel``
        # while another has fewer out (finishing, or waiting on a backup)
        at_once = min(workers, len(task_ids))
        slots = threading.BoundedSemaphore(at_once * options.parallel) \
            if at_once > 1 and options.parallel > 1 else None

        def halted() -> bool:
            return broken.is_set() or (stop is not None and stop.is_set())

        def one(task_id: str) -> int:
            tree_path = out / "trees" / f"{safe_name(task_id)}.json"
            if tree_path.is_file():
                return 0
            if halted():
                stopped.add(task_id)
                return 0

            def iterated(i: int) -> None:
                if on_iteration is not None:
                    on_iteration(task_id, i)
                if halted():
                    raise StopRequested

            try:
                explorer = Explorer(make_env(task_id), options,
                                    EventLog(out / "events" / f"{safe_name(task_id)}.jsonl"),
                                    env_name=env_name, simulated=simulated,
                                    on_iteration=iterated, slots=slots)
                tree = explorer.run()
            except StopRequested:
                stopped.add(task_id)
                return 0
            except (StepwiseError, *MODEL_ERRORS) as exc:  # one failed task; its log is kept
                report.failed[task_id] = error_line(exc)
                if on_failure is not None:
                    on_failure(task_id, report.failed[task_id])
                return 0
            except BaseException:
                broken.set()
                raise
            write_atomic(tree_path, tree.to_json())
            return tree.root.visits

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            report.iterations = sum(pool.map(one, task_ids))
        report.stopped = [t for t in task_ids if t in stopped]
        return finish_run(task_ids, out, pair_options, report, started, model_counts)


@contextmanager
def _tree_read(path: Path, task_id: str) -> Iterator[None]:
    """A finished tree that is not what a search writes (edited, or another program's) is
    one error naming the file, not a KeyError from deep inside pair extraction."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise StepwiseError(f"{path}: not a search tree this run can read ({error_line(exc)});"
                            f" delete it to search {task_id} again") from None


def finish_run(task_ids: Sequence[str], out: Path, pair_options: PairOptions, report: RunReport,
               started: float, model_counts: Callable[[], dict[str, int]] | None = None
               ) -> RunReport:
    """Pairs from every finished tree, in task order, then the summary (both atomic).

    Tasks without a tree (they failed or were stopped) are left out; ``report.failed`` and
    ``report.stopped`` say which. ``report`` keeps this session's iterations, model calls
    and seconds; the summary counts them over the whole run (``whole_run``).
    """
    rows: list[dict] = []
    stats: dict[str, int] = {}
    unequal = [0, 0]
    entropy: dict[int, list[float]] = {}
    spine_entropy: dict[int, list[float]] = {}
    searched = 0  # simulations in the finished trees, whichever session ran them
    finished = [t for t in task_ids if (out / "trees" / f"{safe_name(t)}.json").is_file()]
    for task_id in finished:  # task order, whatever order the tasks finished in
        tree_path = out / "trees" / f"{safe_name(task_id)}.json"
        with _tree_read(tree_path, task_id):
            graph = load_tree(tree_path)
            searched += graph.nodes[0]["visits"]
            tree_rows, task_stats = extract_pairs(
                graph,
                min_visits=pair_options.min_visits, min_delta_q=pair_options.min_delta_q,
                scope=pair_options.scope, format=pair_options.format,
                tokenizer=pair_options.tokenizer, negatives=pair_options.negatives)
            if pair_options.tokenizer is not None and pair_options.format == "preference":
                tree_rows, dropped = check_prefix(tree_rows, pair_options.tokenizer)
                task_stats.pairs -= dropped
                task_stats.dropped_by_tokenizer += dropped
            seen, with_pair = _unequal_decisions(graph, tree_rows, pair_options.scope,
                                                 pair_options.min_visits)
            by_depth, spine = visit_entropy(graph), commit_entropy(graph)
        rows += tree_rows
        unequal[0] += seen
        unequal[1] += with_pair
        for depth, values in by_depth.items():
            entropy.setdefault(depth, []).extend(values)
        for depth, values in spine.items():
            spine_entropy.setdefault(depth, []).extend(values)
        for key, value in asdict(task_stats).items():
            stats[key] = stats.get(key, 0) + value
    write_pairs(rows, out / "pairs.jsonl")
    report.finished = len(finished)
    report.pairs = len(rows)
    report.pair_stats = stats
    report.optimal_rates = optimal_rates(rows)
    report.decisions = decision_report(stats, unequal)
    report.visit_entropy = entropy_report(entropy, spine_entropy)
    report.model_calls = model_counts() if model_counts else {}
    report.seconds = round(time.perf_counter() - started, 3)
    summary = whole_run(asdict(report), out / "summary.json", searched)
    write_atomic(out / "summary.json", json.dumps(summary, indent=1, sort_keys=True))
    return report


def whole_run(session: dict[str, Any], previous: Path, searched: int) -> dict[str, Any]:
    """A session's summary with its counts over the whole run: iterations in every finished
    tree, and model calls and seconds added to those the previous summary held (a session
    killed before its summary adds none); the session's own under ``last_session``."""
    before = read_json(previous) if previous.is_file() else {}
    if not isinstance(before, dict):
        raise StepwiseError(f"{previous}: not a run summary (a JSON object); delete it and "
                            "resume")
    calls = dict(before.get("model_calls", {}))
    for name, count in session["model_calls"].items():
        calls[name] = calls.get(name, 0) + count
    return {**session, "iterations": searched, "model_calls": calls,
            "seconds": round(before.get("seconds", 0.0) + session["seconds"], 3),
            "sessions": before.get("sessions", 1 if before else 0) + 1,
            "last_session": {key: session[key] for key in ("iterations", "model_calls",
                                                          "seconds")}}


def simulations_done(out: Path, task_ids: Sequence[str], options: ExploreOptions) -> int:
    """Simulations run in this folder before: where a resumed run's progress starts. A
    finished plain-MCTS task counts its whole budget (the bar's share), early stop or not."""
    done = 0
    for task_id in task_ids:
        if options.per_step is None and (out / "trees" / f"{safe_name(task_id)}.json").is_file():
            done += options.simulations
            continue
        logged = 0
        try:
            events = EventLog(out / "events" / f"{safe_name(task_id)}.jsonl").read()
        except StepwiseError:  # the task's search fails on it, with that line, and only it
            events = []
        for event in events:
            index, batch = event.get("i", logged), event.get("batch")
            if isinstance(index, int) and isinstance(batch, list) and index >= logged:
                logged += len(batch)  # as a replay counts: each iteration once
        done += logged
    return done
