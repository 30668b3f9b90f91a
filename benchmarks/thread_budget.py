"""Thread budgets beside other work: retrieval and small torch loops, library defaults vs the budget.

The same work runs quiet, beside one competing CPU-bound process, and beside one per core
(all spawned here), each time with the libraries' defaults (torch and numpy's BLAS on
every usable core, small retrieval products threaded like large ones: the baseline) and
with the budget ``plan_threads`` gives for one caller after sampling how busy the cores
are (``ThreadBudget.apply``, and small retrieval products on the calling thread). Both
settings alternate within each load, so they see the same machine, each after a pause in
which the other's pools fall asleep; within a setting the torch work runs first, so a
retrieval pays for torch threads still spinning, as one after a model call does.

The work: one decode step of a SmolLM2-135M-shaped MLP stack (30 layers of 576 -> 1536 ->
576 at batch 1), a 128-token prefill-shaped product (128 x 576 by 576 x 1536, five times),
top-10 retrieval for 3 queries over 1k, 10k and 100k memories (as ``memory_retrieval``)
and for 8 queries over 1k (a product that BLAS does thread).
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy
from langchain_core.embeddings import Embeddings

from benchmarks import percentile, rounded
from benchmarks.memory_retrieval import NOW, QUERIES, SPAN, START, K, build, unit_vectors
from stepwise.memory import retrieval
from stepwise.memory.stream import MemoryStream
from stepwise.threads import (
    ThreadBudget,
    blas_libraries,
    busy_cores,
    plan_threads,
    usable_cores,
)

SIZES = (1_000, 10_000, 100_000)
WIDE_QUERIES = tuple(f"focal point {i}" for i in range(8))
HIDDEN, INNER, LAYERS, PREFILL_TOKENS = 576, 1536, 30, 128
SPIN = "while True: pass"
# Seconds between the two settings: an OpenMP or OpenBLAS pool spins for a while after its
# last job, and the other side's spinning threads are not this side's cost.
SETTLE_SECONDS = 0.25


@contextlib.contextmanager
def competitors(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes for as long as the block runs."""
    processes = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        if processes:
            time.sleep(0.3)  # let them reach the scheduler
        yield
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


@contextlib.contextmanager
def setting(budget: ThreadBudget | None, cores: int) -> Iterator[None]:
    """The libraries' defaults (None) or ``budget``; what was there is put back after."""
    import torch

    torch_before = torch.get_num_threads()
    blas_before = [library.threads for library in blas_libraries()]
    small_before = retrieval.SINGLE_THREAD_MAX_WORK
    try:
        if budget is None:
            torch.set_num_threads(cores)
            for library in blas_libraries():
                library.set_threads(cores)
            retrieval.SINGLE_THREAD_MAX_WORK = 0  # every product goes to the BLAS as it is
        else:
            budget.apply(environ={})  # this process's pools; the environment is left alone
        yield
    finally:
        torch.set_num_threads(torch_before)
        for library, count in zip(blas_libraries(), blas_before, strict=True):
            library.set_threads(count)
        retrieval.SINGLE_THREAD_MAX_WORK = small_before


def torch_work() -> dict[str, Callable[[], object]]:
    import torch

    generator = torch.Generator().manual_seed(0)
    layers = [(torch.randn(HIDDEN, INNER, generator=generator) / 30,
               torch.randn(INNER, HIDDEN, generator=generator) / 30) for _ in range(LAYERS)]
    token = torch.randn(1, HIDDEN, generator=generator)
    prompt = torch.randn(PREFILL_TOKENS, HIDDEN, generator=generator)

    def decode_step() -> object:
        with torch.inference_mode():
            x = token
            for up, down in layers:
                x = x + torch.relu(x @ up) @ down
            return x

    def prefill() -> object:
        with torch.inference_mode():
            return [prompt @ layers[i][0] for i in range(5)]

    return {"torch_decode_step": decode_step, "torch_prefill": prefill}


def retrieval_work() -> dict[str, Callable[[], object]]:
    work: dict[str, Callable[[], object]] = {}
    for size in SIZES:
        stream = build(size, seed=size)[0]
        work[f"retrieve_3q_{size // 1000}k"] = \
            lambda stream=stream: stream.retrieve(list(QUERIES), k=K, now=NOW)
    wide = wide_stream(1_000)
    work["retrieve_8q_1k"] = lambda: wide.retrieve(list(WIDE_QUERIES), k=K, now=NOW)
    return work


class WideQueries(Embeddings):
    """Eight focal points as fixed random unit vectors."""

    def __init__(self, rng: numpy.random.Generator) -> None:
        self.vectors = dict(zip(WIDE_QUERIES, unit_vectors(rng, len(WIDE_QUERIES)).tolist(),
                                strict=True))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the benchmark gives memory embeddings with the texts")

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


def wide_stream(size: int) -> MemoryStream:
    rng = numpy.random.default_rng(8)
    stream = MemoryStream(WideQueries(rng), "paper")
    stream.add_many([f"memory {i}" for i in range(size)],
                    importances=rng.integers(1, 11, size).astype(float).tolist(),
                    created=[START + SPAN * (i / size) for i in range(size)],
                    embeddings=unit_vectors(rng, size))
    return stream


def measure(work: dict[str, Callable[[], object]], budget: ThreadBudget, cores: int,
            repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median ms of each piece of work with the defaults and with the budget, alternating."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for side, chosen in (("default", None), ("budget", budget)):
            with setting(chosen, cores):
                time.sleep(SETTLE_SECONDS)  # the other side's pools have gone to sleep
                for name, call in work.items():
                    start = time.perf_counter()
                    call()
                    seconds.setdefault((side, name), []).append(time.perf_counter() - start)
    medians = {key: percentile(values, 0.5) * 1e3 for key, values in seconds.items()}
    return ({name: medians["default", name] for name in work},
            {name: medians["budget", name] for name in work})


def run(quick: bool = False) -> dict:
    cores = usable_cores()
    work = {**torch_work(), **retrieval_work()}  # a model step, then retrievals
    repeats = 4 if quick else 15
    for call in work.values():  # warm up: pools started, caches filled
        call()
    loads = {"quiet": 0, "one_competitor": 1, "competitor_per_core": cores}
    default_ms: dict[str, dict[str, float]] = {}
    budget_ms: dict[str, dict[str, float]] = {}
    budgets: dict[str, dict] = {}
    for load, count in loads.items():
        with competitors(count):
            busy = busy_cores()
            budget = plan_threads(1, 1, cores=cores, busy=busy)  # the machine, not our env
            default_ms[load], budget_ms[load] = measure(work, budget, cores, repeats)
        budgets[load] = {"threads": budget.threads, "busy_cores": rounded(busy, 2)}
    ratios = {load: {name: rounded(default_ms[load][name] / budget_ms[load][name])
                     for name in work} for load in loads}
    loaded = [default_ms[load][name] / budget_ms[load][name]
              for load in loads if load != "quiet" for name in work]
    headline = math.exp(sum(math.log(value) for value in loaded) / len(loaded))
    return {
        "figures": {
            "budget_ms": {load: {name: rounded(ms) for name, ms in by.items()}
                          for load, by in budget_ms.items()},
            "speedup_vs_defaults": ratios,
            "budget": budgets,
            "cores": cores, "repeats": repeats,
        },
        "baseline": {
            "what": f"the libraries' defaults: torch and numpy's BLAS on all {cores} usable "
                    "cores, small retrieval products threaded like large ones; measured "
                    "alternately with the budget under each load",
            "default_ms": {load: {name: rounded(ms) for name, ms in by.items()}
                           for load, by in default_ms.items()},
        },
        "ratio": {"value": rounded(headline),
                  "ratio_of": "geometric mean over the work and both competing loads of "
                              "median ms with the defaults over median ms with the budget"},
    }
