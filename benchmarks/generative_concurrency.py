"""Wall time of the 25-agent Smallville town's world steps with 8 agents thinking at once
against one at a time, each model request taking a fixed 20 ms (a nearby server).

Both runs start the same town (bundled Smallville from 08:00, when its people are up and
meet) in a fresh folder, take the same steps with ``sim:townsfolk``'s answers behind a
20 ms pause and hashed embeddings, and are timed from the first step to the last (the
seed memories' rating before it is left out). The baseline is concurrency 1, the serial
path; the figure is concurrency 8. The two step logs must be the same byte for byte, or
the benchmark fails: a faster run that does something else would measure nothing. What
bounds the speed-up is the share of a step that is not a model call (retrieval, the
conversations and the actions, which run on one thread) and the Python work of the
threads themselves, which takes turns on the interpreter lock.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding

from benchmarks import rounded
from stepwise.agents.generative import townsfolk
from stepwise.agents.generative.simulation import STEP_LOG, Simulation
from stepwise.sim.sandbox.world import bundled_world
from stepwise.testing.responding import RespondingChatModel

LATENCY = 0.020  # seconds per model request
CONCURRENCY = 8


def fixed_latency(messages, tools) -> str:
    time.sleep(LATENCY)
    return townsfolk.answer(messages[-1].text)


def town_file(folder: Path) -> Path:
    """Bundled Smallville with its clock at 08:00 of its day."""
    spec = json.loads(bundled_world("smallville").spec.model_dump_json())
    spec["clock"]["start"] = spec["clock"]["start"][:11] + "08:00:00"
    path = folder / "smallville.json"
    path.write_text(json.dumps(spec), "utf-8")
    return path


def timed(world: Path, folder: Path, steps: int, concurrency: int) -> tuple[float, int, str]:
    """Seconds for ``steps`` steps, the requests they made, and the step log."""
    with Simulation.create(world, folder, RespondingChatModel(respond=fixed_latency),
                           embeddings=DeterministicFakeEmbedding(size=16)) as run:
        before = run.cost_report()["total"]["requests"]  # the seed memories' ratings
        start = time.perf_counter()
        run.run(steps, concurrency=concurrency)
        seconds = time.perf_counter() - start
        requests = run.cost_report()["total"]["requests"] - before
    return seconds, requests, (folder / STEP_LOG).read_text("utf-8")


def run(quick: bool = False) -> dict:
    steps = 2 if quick else 6
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        world = town_file(folder)
        serial, requests, serial_log = timed(world, folder / "one", steps, 1)
        concurrent, _, concurrent_log = timed(world, folder / "eight", steps, CONCURRENCY)
    if serial_log != concurrent_log:
        raise RuntimeError("the step logs at concurrency 1 and 8 differ")
    return {
        "figures": {
            "concurrency": CONCURRENCY,
            "seconds": rounded(concurrent),
            "seconds_per_step": rounded(concurrent / steps),
            "steps": steps,
            "agents": 25,
            "requests": requests,
            "latency_ms": LATENCY * 1000,
            "step_logs_identical": True,
        },
        "baseline": {"what": "the same steps at concurrency 1 (one agent at a time)",
                     "seconds": rounded(serial), "seconds_per_step": rounded(serial / steps),
                     "model_seconds": rounded(requests * LATENCY)},
        "ratio": {"value": rounded(serial / concurrent),
                  "ratio_of": "wall time at concurrency 1 over concurrency 8 (speed-up)"},
    }
