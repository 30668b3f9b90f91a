"""Memory-stream retrieval, top-10 for 3 queries at 1k-100k memories: numpy columns vs a loop.

A generative agent retrieves for a few focal points at every step, over a stream that
grows all day. Ours is ``MemoryStream.retrieve`` with three queries in one call: one
matrix product, min-max normalisation on columns, argpartition top-k, access times
updated. The baseline is the same formula (same weights, decay per game hour, tie order,
access update) written as the earlier implementations were: a Python loop over memories
per query, each cosine computed with numpy as the reference code's ``cos_sim`` does,
min-max over dicts, and a full sort. Memories are random 384-d unit vectors (no model),
importance uniform in 1-10, created over 30 game days; both sides start from the same
state and must return the same top 10.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy
from langchain_core.embeddings import Embeddings

from benchmarks import percentile, rounded
from stepwise.memory.stream import MemoryStream

DIMENSION = 384
QUERIES = ("planning a party", "the stove is on fire", "what Klaus said about research")
K = 10
START = datetime(2023, 2, 1, 7, 0)
SPAN = timedelta(days=30)
NOW = START + SPAN + timedelta(hours=1)


class FixedQueries(Embeddings):
    """The benchmark's query texts as fixed random unit vectors; documents come precomputed."""

    def __init__(self, rng: numpy.random.Generator) -> None:
        self.vectors = {text: vector.tolist()
                        for text, vector in zip(QUERIES, unit_vectors(rng, len(QUERIES)))}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the benchmark gives memory embeddings with the texts")

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


@dataclass
class LoopMemory:
    id: int
    vector: numpy.ndarray
    importance: float
    created_hours: float
    accessed_hours: float


def unit_vectors(rng: numpy.random.Generator, count: int) -> numpy.ndarray:
    vectors = rng.standard_normal((count, DIMENSION), dtype=numpy.float32)
    return vectors / numpy.linalg.norm(vectors, axis=1, keepdims=True)


def hours(moment: datetime) -> float:
    return (moment - START) / timedelta(hours=1)


def build(size: int, seed: int
          ) -> tuple[MemoryStream, list[LoopMemory], list[numpy.ndarray], float]:
    """The same memories as a stream and as loop records, the query vectors, and the
    seconds ``add_many`` took to store them."""
    rng = numpy.random.default_rng(seed)
    queries = FixedQueries(rng)
    vectors = unit_vectors(rng, size)
    importance = rng.integers(1, 11, size).astype(float)
    created = [START + SPAN * (i / size) for i in range(size)]
    texts = [f"memory {i}" for i in range(size)]
    stream = MemoryStream(queries, "paper")
    start = time.perf_counter()
    stream.add_many(texts, importances=importance.tolist(), created=created, embeddings=vectors)
    add_seconds = time.perf_counter() - start
    records = [LoopMemory(i, vectors[i], importance[i], hours(created[i]), hours(created[i]))
               for i in range(size)]
    query_vectors = [numpy.asarray(queries.vectors[text], dtype=numpy.float32)
                     for text in QUERIES]
    return stream, records, query_vectors, add_seconds


def _normalised(values: dict[int, float]) -> dict[int, float]:
    low, high = min(values.values()), max(values.values())
    if high == low:
        return {key: 0.5 for key in values}
    return {key: (value - low) / (high - low) for key, value in values.items()}


def loop_retrieve(memories: list[LoopMemory], query_vectors: list[numpy.ndarray], k: int,
                  now_hours: float, weights: tuple[float, float, float],
                  decay: float) -> list[list[tuple[int, float]]]:
    """The baseline: per query, a Python loop over memories; (id, score) of the top k."""
    ranked = []
    for query in query_vectors:
        recency, importance, relevance = {}, {}, {}
        for memory in memories:
            recency[memory.id] = decay ** max(now_hours - memory.accessed_hours, 0.0)
            importance[memory.id] = memory.importance
            relevance[memory.id] = float(numpy.dot(memory.vector, query) / (
                numpy.linalg.norm(memory.vector) * numpy.linalg.norm(query)))
        recency, importance, relevance = (_normalised(recency), _normalised(importance),
                                          _normalised(relevance))
        score = {key: weights[0] * recency[key] + weights[1] * importance[key]
                 + weights[2] * relevance[key] for key in recency}
        best = sorted(memories, key=lambda m: (score[m.id], m.accessed_hours, m.created_hours,
                                               m.id), reverse=True)[:k]
        ranked.append([(memory.id, score[memory.id]) for memory in best])
    touched = {memory_id for query_ranked in ranked for memory_id, _ in query_ranked}
    for memory_id in touched:
        memories[memory_id].accessed_hours = max(memories[memory_id].accessed_hours, now_hours)
    return ranked


def median_ms(call: Callable[[], object], runs: int) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return percentile(seconds, 0.5) * 1e3


def measure(size: int, runs: int, loop_runs: int) -> tuple[float, float | None, float]:
    """Median ms of ours and of the loop (None when not run), and seconds to add the memories."""
    stream, records, query_vectors, add_seconds = build(size, seed=size)
    ours = stream.retrieve(list(QUERIES), k=K, now=NOW)
    theirs = loop_retrieve(records, query_vectors, K, hours(NOW), stream.weights, stream.decay)
    for mine, other in zip(ours, theirs):
        same_ids = [memory.id for memory in mine] == [memory_id for memory_id, _ in other]
        same_scores = numpy.allclose([memory.score for memory in mine],
                                     [score for _, score in other], atol=1e-5)
        if not (same_ids or same_scores):
            raise AssertionError(f"memory_retrieval: ours and the loop disagree at {size}")
    ours_ms = median_ms(lambda: stream.retrieve(list(QUERIES), k=K, now=NOW), runs)
    loop_ms = None
    if loop_runs:
        loop_ms = median_ms(lambda: loop_retrieve(records, query_vectors, K, hours(NOW),
                                                  stream.weights, stream.decay), loop_runs)
    return ours_ms, loop_ms, add_seconds


def run(quick: bool = False) -> dict:
    sizes = (1_000, 10_000, 100_000)
    runs = 5 if quick else 21
    loop_runs = {1_000: 3, 10_000: 1, 100_000: 0} if quick else \
        {1_000: 5, 10_000: 3, 100_000: 3}
    ours_ms: dict[str, float] = {}
    loop_ms: dict[str, float] = {}
    build_s: dict[str, float] = {}
    for size in sizes:
        ours, loop, seconds = measure(size, runs, loop_runs[size])
        ours_ms[str(size)], build_s[str(size)] = ours, seconds
        if loop is not None:
            loop_ms[str(size)] = loop
    compared = max(loop_ms, key=int)
    speedup = loop_ms[compared] / ours_ms[compared]
    return {
        "figures": {
            "latency_ms": {size: rounded(ms) for size, ms in ours_ms.items()},
            "latency_ms_100k": rounded(ours_ms["100000"]),
            "speedup_vs_loop": rounded(speedup),
            "speedup_measured_at": int(compared),
            "add_many_s": {size: rounded(s) for size, s in build_s.items()},
            "queries": len(QUERIES), "k": K, "dimension": DIMENSION, "runs": runs,
        },
        "baseline": {
            "what": "the same formula as a Python loop over memories per query (numpy cosine "
                    "per memory, as the reference code's cos_sim), min-max over dicts, full "
                    "sort; measured directly, not scaled",
            "latency_ms": {size: rounded(ms) for size, ms in loop_ms.items()},
            "runs": {str(size): count for size, count in loop_runs.items() if count},
        },
        "ratio": {"value": rounded(speedup),
                  "ratio_of": f"median ms for top-{K} of {len(QUERIES)} queries at {compared} "
                              "memories, loop over ours"},
    }
