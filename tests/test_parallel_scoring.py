"""One scorer shared by many threads gives each caller the score a serial call gives,
and a LongMT search run with parallel rollouts scores its pages as a serial one does."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from stepwise.scoring import IncrementalScorer, SegmentStats

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
        shared = IncrementalScorer("en", max_cached_pages=2, max_cached_references=1)
        wrong: list[int] = []

        def work(thread: int) -> None:
            for call in range(calls):
                k = (thread + call) % len(hyps)
                if shared.page_stats(hyps[k], ref) != serial[k]:
                    wrong.append(k)

        with frequent_thread_switches():
            errors = run_together(work)
        assert [type(error).__name__ for error in errors] == []
        assert wrong == []
        assert shared.hits + shared.misses == THREADS * calls
