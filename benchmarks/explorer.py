"""The explorer's cost around model calls: overhead per call, concurrency, cache savings.

Three figures, each against a baseline measured in the same run:
- overhead: MCTS over a toy environment whose every step is one call to a zero-latency
  model, in µs per call, against a bare loop of ``model.invoke`` making the same calls
  (the same messages); each sample runs both back to back and the figures are medians,
  so a machine that slows down mid-run slows both. Also with the event log written to a
  folder, as ``stepwise explore`` does;
- efficiency: the same search with a model that sleeps a fixed latency (20 ms) per call,
  at concurrency 16 = tasks at once × simulations in flight per task (16×1, 4×4, 2×8,
  1×16): (calls × latency / concurrency) / wall time (1.0 is perfect). A fifth run
  queues 64 tasks for the 16 workers, as a large run does. With one simulation at a
  time a task is a chain of calls, so a run lasts at least as long as the busiest
  worker's chains: ``bound`` (calls over workers × the busiest worker's calls, the
  tasks dealt to workers in order as they free up) bounds its efficiency from above
  whatever the explorer does, and ``of_bound`` is the share of it reached (their
  different trees leave some slots idle at the end);
- cache: on the synthetic translation world (a simulation), model calls made and calls
  answered by the request cache.
"""

from __future__ import annotations

import heapq
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from benchmarks import rounded
from stepwise.llm.sim import EchoSimChatModel
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import explore_tasks


class SleepyEcho(EchoSimChatModel):
    """The echo simulation, answering after a fixed latency (sleeping frees the GIL)."""

    latency: float = 0.0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any):
        if self.latency:
            time.sleep(self.latency)
        return super()._generate(messages, stop, run_manager, **kwargs)


class CallingChain:
    """Twelve steps of three actions; each step is one model call."""

    depth = 12

    def __init__(self, task_id: str, model: BaseChatModel) -> None:
        self.task_id, self.model, self.calls = task_id, model, 0
        self.prompts: list[str] = []  # every call's message, for the bare loop to repeat

    def initial_state(self):
        return ()

    def actions(self, state):
        return [0, 1, 2]

    def step(self, state, action):
        self.calls += 1
        prompt = f"{self.task_id} {state} {action}"
        self.prompts.append(prompt)
        self.model.invoke([HumanMessage(prompt)])
        return (*state, action)

    def is_terminal(self, state):
        return len(state) == self.depth

    def score(self, state):
        return 1.0 + sum(a == 1 for a in state)

    def step_scores(self, state):
        return [self.score(state)] * len(state)

    def baseline_score(self):
        return 1.0

    def baseline_step_scores(self):
        return [1.0] * self.depth

    def rollout_action(self, state, rng):
        return rng.randrange(3)

    def decision_prompt(self, state):
        return [{"role": "user", "content": str(state)}]

    def decision_completion(self, state, action):
        return [{"role": "assistant", "content": str(action)}]

    def tool_schemas(self):
        return []

    def optimal_action(self, state):
        return 1

    def action_label(self, action):
        return str(action)


def overhead(simulations: int) -> dict[str, float]:
    """One sample: the search (no log, then logged to a folder) and a bare loop of the same
    calls, back to back."""
    env = CallingChain("t", SleepyEcho())
    start = time.perf_counter()
    Explorer(env, ExploreOptions(simulations=simulations)).run()
    explorer_seconds = time.perf_counter() - start
    logged_env = CallingChain("t", SleepyEcho())
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        Explorer(logged_env, ExploreOptions(simulations=simulations),
                 EventLog(Path(folder) / "events.jsonl")).run()
        logged_seconds = time.perf_counter() - start
    model = SleepyEcho()
    start = time.perf_counter()
    for prompt in env.prompts:
        model.invoke([HumanMessage(prompt)])
    bare_seconds = time.perf_counter() - start
    return {"calls": env.calls, "explorer_us_per_call": explorer_seconds / env.calls * 1e6,
            "logged_us_per_call": logged_seconds / env.calls * 1e6,
            "bare_us_per_call": bare_seconds / env.calls * 1e6}


def efficiency(tasks: int, parallel: int, simulations: int, latency: float,
               queued: int = 1) -> dict[str, float]:
    """Concurrency = tasks searched at once × simulations in flight per task; ``queued``
    times as many tasks wait their turn, as in a large run (a worker that finishes one
    takes the next, so unequal tasks leave fewer slots idle)."""
    envs = {f"t{i}": CallingChain(f"t{i}", SleepyEcho(latency=latency))
            for i in range(tasks * queued)}
    concurrency = tasks * parallel
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        explore_tasks(list(envs), envs.__getitem__,
                      ExploreOptions(simulations=simulations, parallel=parallel),
                      Path(folder), env_name="chain", workers=tasks)
        wall = time.perf_counter() - start
    per_task = [env.calls for env in envs.values()]
    calls = sum(per_task)
    figures = {"concurrency": concurrency, "calls": calls, "wall_s": wall,
               "ideal_s": calls * latency / concurrency,
               "efficiency": calls * latency / concurrency / wall}
    if parallel == 1:
        figures["bound"] = calls / tasks / busiest_worker(per_task, tasks)
        figures["of_bound"] = figures["efficiency"] / figures["bound"]
    return figures


def busiest_worker(per_task: list[int], workers: int) -> int:
    """Calls of the busiest worker when each free worker takes the next task in order."""
    loads = [0] * workers
    for calls in per_task:
        heapq.heapreplace(loads, loads[0] + calls)
    return max(loads)


def cache_savings(docs: int, simulations: int) -> dict[str, Any]:
    from stepwise.agents.longmt.environment import LongMTEnvironment
    from stepwise.documents.pages import paginate
    from stepwise.llm import from_uri
    from stepwise.llm.cache import CachingChatModel
    from stepwise.sim.translation import WorldOracle, make_documents

    model = CachingChatModel(model=from_uri("sim:translator"))
    world = {d.id: d for d in make_documents(docs, 0)}

    def make_env(task_id: str) -> LongMTEnvironment:
        doc = world[task_id]
        return LongMTEnvironment(task_id, paginate(doc.src, "qsy", page_sentences=5), doc.ref,
                                 model, src="qsy", tgt="en", oracle=WorldOracle(doc.ref))

    with tempfile.TemporaryDirectory() as folder:
        explore_tasks(list(world), make_env, ExploreOptions(simulations=simulations),
                      Path(folder), env_name="longmt")
    counts = model.counts
    return {"documents": docs, "simulations": simulations, "calls_made": counts["calls"],
            "calls_saved": counts["saved"],
            "saved_share": counts["saved"] / (counts["calls"] + counts["saved"])}


def run(quick: bool = False) -> dict:
    runs = 3 if quick else 7
    samples = [overhead(40 if quick else 150) for _ in range(runs)]

    def median(key: str) -> float:
        return statistics.median(sample[key] for sample in samples)

    flow = {f"{t}x{p}": efficiency(t, p, 16 * p if quick else 48 * p, 0.02)
            for t, p in ((16, 1), (4, 4), (2, 8), (1, 16))}
    # 64 tasks, 16 at a time: the 16x1 split as a large run meets it (a finished task's
    # worker takes the next one).
    flow["16x1 of 64 tasks"] = efficiency(16, 1, 16 if quick else 48, 0.02, queued=4)
    cache = cache_savings(1 if quick else 2, 16 if quick else 48)
    return {
        "figures": {
            "explorer_us_per_call": rounded(median("explorer_us_per_call")),
            "overhead_us_per_call": rounded(statistics.median(
                s["explorer_us_per_call"] - s["bare_us_per_call"] for s in samples)),
            "overhead_logged_us_per_call": rounded(statistics.median(
                s["logged_us_per_call"] - s["bare_us_per_call"] for s in samples)),
            "calls_per_search": samples[0]["calls"],
            "efficiency_at_concurrency_16": {name: rounded(run["efficiency"])
                                             for name, run in flow.items()},
            "efficiency_runs": {name: {k: rounded(v) for k, v in run.items()}
                                for name, run in flow.items()},
            "cache_simulated_world": {k: rounded(v) if isinstance(v, float) else v
                                      for k, v in cache.items()},
        },
        "baseline": {"what": "a bare loop of model.invoke making the same calls on the same "
                             "zero-latency model",
                     "us_per_call": rounded(median("bare_us_per_call"))},
        "ratio": {"value": rounded(statistics.median(
                      s["explorer_us_per_call"] / s["bare_us_per_call"] for s in samples)),
                  "ratio_of": "median over samples of µs per model call, explorer over bare "
                              "loop"},
    }
