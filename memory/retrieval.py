"""The retrieval score of Park et al. (2023), on whole columns of memories at once.

score = w_recency * recency + w_importance * importance + w_relevance * relevance, where

- recency is ``decay ** (game hours since the memory was last accessed)``,
- importance is the 1-10 poignancy given when the memory was added,
- relevance is the cosine similarity of the memory's and the query's embeddings,

and each of the three is min-max normalised to [0, 1] over the memories being ranked
before the weighted sum (unnormalised, the 1-10 importance would drown the others). A
column whose values are all equal carries no information and normalises to the constant
``EQUAL_COLUMN_VALUE`` (0.5, the middle of the range, as the reference code does): no
division by zero, no NaN. Equal scores are ordered by last access, then creation, then
id, newest first.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy

from stepwise.threads import single_blas_thread

EQUAL_COLUMN_VALUE = 0.5
MICROSECONDS_PER_HOUR = 3_600_000_000
# Rows per block of the similarity product: a block stays in cache, and a product this
# small keeps the BLAS on one thread, which is 2-3x faster than one threaded product over
# 100k rows of 384 floats with a few queries (measured on a shared 2-core machine).
BLOCK_ROWS = 512
# Multiply-adds (memories x queries x dimensions) up to which the whole product runs on the
# calling thread: about 2,700 memories x 8 queries of 384 floats. Smaller, a BLAS pool costs
# more to wake than it saves, and beside other work a pool that cannot get its cores made a
# 1k x 8 product 200x slower (0.14 ms on one thread, 32 ms on two).
SINGLE_THREAD_MAX_WORK = 1 << 23


@dataclass(frozen=True)
class RetrievalPreset:
    """Weights (recency, importance, relevance) and decay per game hour since last access."""

    weights: tuple[float, float, float]
    decay: float
    source: str


PRESETS: dict[str, RetrievalPreset] = {
    "paper": RetrievalPreset(
        weights=(1.0, 1.0, 1.0), decay=0.995,
        source="Park et al. 2023, section 4.1: all weights 1, decay 0.995 per sandbox game "
               "hour since the memory was last retrieved"),
    "reference-code": RetrievalPreset(
        weights=(0.5, 2.0, 3.0), decay=0.995,
        source="the authors' code (reverie retrieve.py new_retrieve): gw = [0.5, 3, 2] "
               "multiplies recency, RELEVANCE and IMPORTANCE in that order, so relevance "
               "weighs 3 and importance 2. Its recency is 0.99 ** rank in last-access "
               "order, oldest first (a position, inverted); here recency keeps the paper's "
               "0.995 per game hour"),
}


def check_weights(weights: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(weight) for weight in weights)
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError("weights are three finite non-negative numbers (recency, importance, "
                         f"relevance), not {tuple(weights)!r}")
    return values  # type: ignore[return-value]


def check_decay(decay: float) -> float:
    if not (isinstance(decay, int | float) and 0 < decay <= 1):
        raise ValueError(f"decay per game hour is in (0, 1], not {decay!r}")
    return float(decay)


def min_max(values: numpy.ndarray) -> numpy.ndarray:
    """``values`` scaled to [0, 1] along the last axis (per query for a queries x memories
    array); where all are equal they become 0.5."""
    low = values.min(axis=-1, keepdims=True)
    span = values.max(axis=-1, keepdims=True) - low
    flat = span == 0
    scaled = (values - low) / numpy.where(flat, 1, span)
    return numpy.where(flat, EQUAL_COLUMN_VALUE, scaled)


def cosine(vectors: numpy.ndarray, queries: numpy.ndarray,
           rows: numpy.ndarray | None = None) -> numpy.ndarray:
    """queries x memories cosine of unit rows: one matrix product, computed in row blocks.

    ``rows`` selects memories (their vectors are gathered block by block, never copied
    whole); None takes every row of ``vectors``. A small product stays on this thread
    (``SINGLE_THREAD_MAX_WORK``).
    """
    count = vectors.shape[0] if rows is None else rows.size
    by_memory = numpy.empty((count, queries.shape[0]), dtype=numpy.float32)
    transposed = numpy.ascontiguousarray(queries.T)
    small = count * queries.shape[0] * queries.shape[1] <= SINGLE_THREAD_MAX_WORK
    with single_blas_thread() if small else contextlib.nullcontext():
        for start in range(0, count, BLOCK_ROWS):
            block = slice(start, start + BLOCK_ROWS)
            numpy.matmul(vectors[block] if rows is None else vectors[rows[block]], transposed,
                         out=by_memory[block])
    return numpy.ascontiguousarray(by_memory.T)


def recency(accessed_us: numpy.ndarray, now_us: int, decay: float) -> numpy.ndarray:
    """``decay ** hours`` since last access (microsecond timestamps; none in the future)."""
    hours = numpy.maximum(now_us - accessed_us, 0) / MICROSECONDS_PER_HOUR
    return numpy.exp(hours * math.log(decay))


def top_k(scores: numpy.ndarray, k: int, tie_keys: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Positions of the ``k`` highest ``scores``, best first.

    Among equal scores the larger ``tie_keys`` win, the first key first. ``argpartition``
    finds the k best in linear time; only they (and, when the k-th score is shared with
    positions left out, the shared ones) are sorted.
    """
    count = scores.size
    if k >= count:
        chosen = numpy.arange(count)
    else:
        split = numpy.argpartition(scores, count - k)
        chosen = split[count - k:]
        kth = scores[split[count - k]]
        tied = numpy.flatnonzero(scores == kth)
        inside = numpy.count_nonzero(scores[chosen] == kth)
        if tied.size > inside:  # the k-th score is shared across the cut: tie keys decide
            above = chosen[scores[chosen] > kth]
            by_keys = numpy.lexsort([key[tied] for key in reversed(tie_keys)])
            chosen = numpy.concatenate([above, tied[by_keys[tied.size - (k - above.size):]]])
    order = numpy.lexsort([-key[chosen] for key in reversed(tie_keys)] + [-scores[chosen]])
    return chosen[order]
