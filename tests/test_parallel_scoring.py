"""One scorer shared by many threads gives each caller the score a serial call gives,
and a LongMT search run with parallel rollouts scores its pages as a serial one does."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.scoring import IncrementalScorer, SegmentStats
from stepwise.search import explorer

THREADS = 8
ROUNDS = 40


@contextmanager
def frequent_thread_switches() -> Iterator[None]:
    """Ask the interpreter to switch threads every microsecond, so races show up quickly."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_together(work: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Run ``work(i)`` on ``threads`` threads started at once; the exceptions they raised."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as error:  # noqa: BLE001 -- reported by the test
            errors.append(error)

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def page(thread: int, round_: int) -> tuple[list[str], list[str]]:
    """A (hypothesis, reference) page that no other thread or round scores."""
    ref = [f"the reference line {k} of page {thread} in round {round_} says {'word ' * thread}"
           for k in range(3)]
    hyp = [f"the hypothesis line {k} of page {thread} in round {round_}" for k in range(3)]
    return hyp, ref


def test_threads_sharing_a_scorer_each_get_their_pages_serial_statistics():
    pages = {(t, r): page(t, r) for t in range(THREADS) for r in range(ROUNDS)}
    serial = {key: IncrementalScorer("en").page_stats(*lines) for key, lines in pages.items()}
    shared = IncrementalScorer("en")
    got: dict[tuple[int, int], SegmentStats] = {}

    def work(thread: int) -> None:
        for round_ in range(ROUNDS):
            got[thread, round_] = shared.page_stats(*pages[thread, round_])

    with frequent_thread_switches():
        errors = run_together(work)
    assert errors == []
    wrong = [key for key in pages if got[key] != serial[key]]
    assert wrong == [], f"{len(wrong)} of {len(pages)} pages scored against another's references"
    assert shared.hits + shared.misses == len(pages)


def evicting_trial(hyps: list[list[str]], ref: list[str], serial: list[SegmentStats],
                   calls: int) -> tuple[list[str], list[int], int]:
    """Threads cycling three pages through a two-page cache: (errors, wrong pages, counted)."""
    shared = IncrementalScorer("en", max_cached_pages=2, max_cached_references=1)
    wrong: list[int] = []

    def work(thread: int) -> None:
        for call in range(calls):
            k = (thread + call) % len(hyps)
            if shared.page_stats(hyps[k], ref) != serial[k]:
                wrong.append(k)

    with frequent_thread_switches():
        errors = run_together(work)
    return [type(error).__name__ for error in errors], wrong, shared.hits + shared.misses


def test_threads_evicting_from_a_small_cache_neither_fail_nor_lose_counts():
    # One reference, so only the caches' own bookkeeping is shared: a lookup that finds
    # a page another thread evicts before marking it recent must not raise. The window
    # is a few bytecodes wide, so this catches the old race in about half of the runs;
    # the reference race above is caught in every run.
    ref = ["the cat sat on the mat", "and the dog lay by the door"]
    hyps = [[f"the cat {k} on a mat", f"a dog lay {k} the door"] for k in range(3)]
    serial = [IncrementalScorer("en").page_stats(hyp, ref) for hyp in hyps]
    calls = 300
    for _trial in range(4):
        assert evicting_trial(hyps, ref, serial, calls) == ([], [], THREADS * calls)


# -- a LongMT search with parallel rollouts ---------------------------------------------

SIMULATIONS = 24


class InlineExecutor:
    """A stand-in for ThreadPoolExecutor that runs each call on the calling thread."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[..., Any], *items: Iterable[Any]) -> Iterator[Any]:
        return iter(list(map(fn, *items)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One simulated document cut to 6 lines (fast)."""
    from stepwise.sim.translation import make_documents, write_dataset

    path = write_dataset(make_documents(1, 0), tmp_path_factory.mktemp("world"))
    row = json.loads(path.read_text("utf-8"))
    row["src"], row["ref"] = ("\n".join(row[key].split("\n")[:6]) for key in ("src", "ref"))
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    return path


def explore_tree(dataset: Path, out: Path, parallel: int, page_sentences: int) -> dict[str, Any]:
    """The one task's tree after ``stepwise explore --parallel N`` with seed 0."""
    done = CliRunner().invoke(app, ["explore", str(dataset), "-m", "sim:translator",
                                    "--page-sentences", str(page_sentences), "--simulations", str(SIMULATIONS),
                                    "--seed", "0", "--parallel", str(parallel),
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    (tree,) = (out / "trees").iterdir()
    return json.loads(tree.read_text("utf-8"))


def by_action_path(tree: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Each node under the labels of the actions that lead to it from the root."""
    nodes = {node["id"]: node for node in tree["nodes"]}

    def labels(node: dict[str, Any]) -> tuple[str, ...]:
        if node["parent"] is None:
            return ()
        return (*labels(nodes[node["parent"]]), str(node["label"]))

    return {labels(node): node for node in nodes.values()}


def test_parallel_rollouts_give_the_tree_the_same_rounds_give_run_one_by_one(
        dataset, tmp_path, monkeypatch):
    # The same selection (4 leaves a round, apart by virtual loss), with the round's
    # rollouts on 4 threads or one after another on this one: only the threads differ,
    # so any difference is state the rollouts share, such as the page scorer.
    with frequent_thread_switches():
        threaded = explore_tree(dataset, tmp_path / "threads", parallel=4, page_sentences=2)
    monkeypatch.setattr(explorer, "ThreadPoolExecutor", InlineExecutor)
    inline = explore_tree(dataset, tmp_path / "inline", parallel=4, page_sentences=2)
    assert threaded["nodes"] == inline["nodes"]
    assert threaded["links"] == inline["links"]


def test_parallel_and_serial_search_agree_on_every_state_they_both_reach(dataset, tmp_path):
    # --parallel 4 and --parallel 1 build different trees by design: a round of 4 picks
    # its leaves before any of their results are back (virtual loss steers the later
    # picks away), where serial search sees each result before the next pick. So the
    # nodes are created in another order, their ids differ, and rollouts, seeded by the
    # node-id path and visit count, differ too. What a state determines must agree:
    # the simulation count, and for every action path in both trees the decision shown
    # there and, at a finished document (a leaf visited again), its score. Two pages
    # (one action, then eight), so every finished document is visited more than once.
    serial = explore_tree(dataset, tmp_path / "serial", parallel=1, page_sentences=8)
    parallel = explore_tree(dataset, tmp_path / "parallel", parallel=4, page_sentences=8)
    one, four = by_action_path(serial), by_action_path(parallel)
    assert one[()]["visits"] == four[()]["visits"] == SIMULATIONS
    both = one.keys() & four.keys()
    assert len(both) > 1
    for path in both:
        a, b = one[path], four[path]
        assert (a["prompt"], a["completion"], a["optimal"], a["best_actions"]) == \
            (b["prompt"], b["completion"], b["optimal"], b["best_actions"]), path
    finished = [path for path in both if one[path]["visits"] > 1 and four[path]["visits"] > 1
                and not any(p[:-1] == path for p in one)]
    assert finished, "no finished document visited in both trees"
    for path in finished:
        assert one[path]["score"] == four[path]["score"], path
