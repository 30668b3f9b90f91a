"""Local rollouts at 8 in flight: one padded generate for the calls that meet (tiny model).

Eight threads (parallel simulations) each send rollout-sized greedy calls to the ``tiny``
model, one after another, so eight are in flight at all times. Ours is the model behind
``BatchingChatModel``, whose queue gathers the calls that meet into one ``generate``; the
baseline is the bare ``HFChatModel``, each thread making its own ``generate`` as the
explorer does today. Both sides answer the same prompts and must give the same tokens,
and run under the thread budget for 8 callers (``plan_threads``), so that neither gains
from more torch threads than the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from benchmarks import percentile, rounded
from stepwise.llm.batching import BatchingChatModel
from stepwise.llm.hf import HFChatModel
from stepwise.llm.tiny import tiny_model_path
from stepwise.threads import plan_threads, usable_cores

IN_FLIGHT = 8
MAX_TOKENS = 32
SYSTEM = "You translate one page at a time and keep every name as the entity records say."


def conversations(count: int) -> list[list]:
    """Rollout-like requests of different lengths (so the batch is left-padded)."""
    return [[SystemMessage(SYSTEM),
             HumanMessage(f"Page {i}: " + "Nyssi waited by the gate with a lantern. " * (1 + i % 5))]
            for i in range(count)]


def in_flight(call: Callable[[list], AIMessage], prompts: list[list], rounds: int
              ) -> tuple[float, list[list[int]]]:
    """Seconds for ``IN_FLIGHT`` threads to make ``rounds`` calls each, and the answers'
    completion tokens in prompt order."""
    def worker(index: int) -> list[list[int]]:
        return [call(prompts[(index + IN_FLIGHT * r) % len(prompts)])
                .response_metadata["completion_token_ids"] for r in range(rounds)]

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        answers = list(pool.map(worker, range(IN_FLIGHT)))
    elapsed = time.perf_counter() - start
    by_prompt: dict[int, list[int]] = {}
    for index, tokens in enumerate(answers):
        for r, ids in enumerate(tokens):
            by_prompt.setdefault((index + IN_FLIGHT * r) % len(prompts), ids)
    return elapsed, [by_prompt[i] for i in sorted(by_prompt)]


def run(quick: bool = False) -> dict:
    import torch

    model = HFChatModel(model_path=str(tiny_model_path(0)), max_tokens=MAX_TOKENS)
    batched = BatchingChatModel(model=model, max_batch=IN_FLIGHT)
    prompts = conversations(2 * IN_FLIGHT)
    rounds, repeats = (3, 3) if quick else (8, 7)
    model.invoke(prompts[0])  # load the weights outside the clock
    threads_before = torch.get_num_threads()
    threads = plan_threads(1, IN_FLIGHT, cores=usable_cores()).threads
    torch.set_num_threads(threads)
    ours_s, theirs_s = [], []
    try:
        for _ in range(repeats):  # interleaved: both sides see the same machine
            seconds, theirs = in_flight(model.invoke, prompts, rounds)
            theirs_s.append(seconds)
            seconds, ours = in_flight(batched.invoke, prompts, rounds)
            ours_s.append(seconds)
            if ours != theirs:
                raise AssertionError("batched_rollouts: batched and one-by-one answers differ")
    finally:
        torch.set_num_threads(threads_before)
        batched.close()
    sizes = batched.queue.batch_sizes
    calls = IN_FLIGHT * rounds
    ours_rate = calls / percentile(ours_s, 0.5)
    theirs_rate = calls / percentile(theirs_s, 0.5)
    return {
        "figures": {
            "calls_per_s": rounded(ours_rate),
            "mean_batch": rounded(sum(sizes) / len(sizes)),
            "answers_equal": True,
            "in_flight": IN_FLIGHT, "max_tokens": MAX_TOKENS, "calls_per_repeat": calls,
            "repeats": repeats, "torch_threads": threads,
        },
        "baseline": {
            "what": "the bare HFChatModel on the same prompts from the same 8 threads, each "
                    "thread its own generate (how parallel simulations call it today)",
            "calls_per_s": rounded(theirs_rate),
        },
        "ratio": {"value": rounded(ours_rate / theirs_rate),
                  "ratio_of": f"greedy calls/s at {IN_FLIGHT} in flight, batched over "
                              "one generate per call"},
    }
