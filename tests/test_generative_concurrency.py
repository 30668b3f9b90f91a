"""The agents of a world step think at once, and the run is the same byte for byte at any
concurrency and after a kill and ``--resume`` (issue 18, item 3).

The model answers as sim:townsfolk after a pause that differs from prompt to prompt, so
at concurrency 8 the requests finish in another order than one at a time. The town's clock
starts at 08:00 and reflection fires at 40, so two steps hold observations, reactions,
conversations and reflections.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from typer.testing import CliRunner

from stepwise.agents.generative import townsfolk
from stepwise.agents.generative.simulation import RUN_DB, STEP_LOG, RunError, Simulation
from stepwise.cli import app
from stepwise.cli.generative import batched, default_concurrency
from stepwise.testing.responding import RespondingChatModel

SMALLVILLE = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / \
    "data" / "smallville.json"
STEPS = 2
THRESHOLD = 40
KILLED = 9
runner = CliRunner()


@pytest.fixture()
def town(tmp_path) -> Path:
    """Smallville from 08:00, when the townsfolk are up and meet."""
    world = json.loads(SMALLVILLE.read_text("utf-8"))
    world["clock"]["start"] = "2023-02-14T08:00:00"
    path = tmp_path / "smallville.json"
    path.write_text(json.dumps(world), "utf-8")
    return path


def pause(prompt: str) -> float:
    """0 to 4 ms, by the prompt: a model whose latency varies from call to call."""
    return (zlib.crc32(prompt.encode("utf-8")) % 5) / 1000


class UnevenTownsfolk:
    """sim:townsfolk's answers after an uneven pause; the prompts in the order answered."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.lock = threading.Lock()
        self.model = RespondingChatModel(respond=self.respond)

    def respond(self, messages, tools) -> str:
        prompt = messages[-1].text
        time.sleep(pause(prompt))
        with self.lock:
            self.answered.append(prompt)
        return townsfolk.answer(prompt)


def database_dump(path: Path) -> str:
    """The run's database as SQL, wall-time seconds left out (the one figure that differs
    between two runs of the same world)."""
    copy = sqlite3.connect(":memory:")
    source = sqlite3.connect(path)
    try:
        source.backup(copy)
    finally:
        source.close()
    copy.execute("UPDATE generative_costs SET seconds = 0")
    return "\n".join(copy.iterdump())


def simulated(town: Path, folder: Path, concurrency: int) -> UnevenTownsfolk:
    model = UnevenTownsfolk()
    with Simulation.create(town, folder, model.model, threshold=THRESHOLD,
                           embeddings=DeterministicFakeEmbedding(size=16),
                           concurrency=concurrency) as run:
        run.run(STEPS, concurrency=concurrency)
    return model


def test_concurrency_1_and_8_give_the_same_step_log_and_database(town, tmp_path):
    one, eight = tmp_path / "one", tmp_path / "eight"
    serial, concurrent = simulated(town, one, 1), simulated(town, eight, 8)
    assert sorted(serial.answered) == sorted(concurrent.answered)
    assert serial.answered != concurrent.answered  # the requests finished in another order
    assert (one / STEP_LOG).read_bytes() == (eight / STEP_LOG).read_bytes()
    steps = [json.loads(line) for line in (one / STEP_LOG).read_text("utf-8").splitlines()]
    assert len(steps) == STEPS and any(step["conversations"] for step in steps)
    assert any(agent["reflections"] for step in steps for agent in step["agents"].values())
    assert database_dump(one / RUN_DB) == database_dump(eight / RUN_DB)


KILLER = r'''
import contextlib, os, sys, time, zlib
from langchain_core.embeddings import DeterministicFakeEmbedding
from stepwise.agents.generative import simulation, townsfolk
from stepwise.cli import app, generative

generative.EMBEDDINGS = DeterministicFakeEmbedding(size=16)
real_answer = townsfolk.answer
def answer(prompt):
    time.sleep((zlib.crc32(prompt.encode("utf-8")) % 5) / 1000)
    return real_answer(prompt)
townsfolk.answer = answer

nth, args = int(sys.argv[1]), sys.argv[2:]
real_transaction, commits = simulation.Simulation.transaction, []
@contextlib.contextmanager
def transaction(self):  # killed right after the nth commit (the creation is the 1st)
    with real_transaction(self) as db:
        yield db
    commits.append(1)
    if len(commits) == nth:
        os._exit(9)
simulation.Simulation.transaction = transaction
app(args, prog_name="stepwise")
'''


def test_a_concurrent_run_killed_mid_run_resumes_to_the_same_log(town, tmp_path, monkeypatch):
    from stepwise.cli import generative

    monkeypatch.setattr(generative, "EMBEDDINGS", DeterministicFakeEmbedding(size=16))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ["--threshold", str(THRESHOLD), "--no-metrics"]
    done = runner.invoke(app, ["simulate", str(town), "--steps", str(STEPS), "--out",
                               str(whole), *common, "--concurrency", "1"])
    assert done.exit_code == 0, done.output
    cut = subprocess.run(
        [sys.executable, "-c", KILLER, "2", "simulate", str(town), "--steps", str(STEPS),
         "--out", str(parts), *common, "--concurrency", "8"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert cut.returncode == KILLED, cut.stderr
    assert (parts / STEP_LOG).read_text("utf-8") == ""  # killed as step 0 committed
    resumed = runner.invoke(app, ["simulate", str(town), "--steps", str(STEPS - 1), "--out",
                                  str(parts), "--resume", *common, "--concurrency", "8"])
    assert resumed.exit_code == 0, resumed.output
    assert (parts / STEP_LOG).read_bytes() == (whole / STEP_LOG).read_bytes()
    assert database_dump(parts / RUN_DB) == database_dump(whole / RUN_DB)


def test_a_concurrency_below_one_is_refused(tmp_path):
    with Simulation.create(SMALLVILLE, tmp_path / "run", UnevenTownsfolk().model,
                           embeddings=DeterministicFakeEmbedding(size=16)) as run, \
            pytest.raises(RunError, match="concurrency is a number of agents >= 1, not 0"):
        run.step(concurrency=0)
    result = runner.invoke(app, [
        "simulate", "party", "--steps", "1", "--out", str(tmp_path / "cli"),
        "--concurrency", "0"])
    assert result.exit_code == 2 and "--concurrency" in result.output


class LocalModel(RespondingChatModel):
    """A model that answers several conversations in one call, as a local hf: model does."""

    def generate_many(self, conversations, **options):
        return [self._generate(list(messages)) for messages in conversations]


def test_a_server_gets_eight_agents_at_once_and_a_local_model_batches_them():
    assert default_concurrency("openai:http://localhost:8000/v1") == 8
    assert default_concurrency("sim:townsfolk") == default_concurrency("hf:smollm2") == 1
    local = LocalModel(respond=lambda messages, tools: "")
    assert batched(local, 1) is local
    assert type(batched(local, 4)).__name__ == "BatchingChatModel"
    assert batched(local, 4).max_batch == 4
    simulation = RespondingChatModel(respond=lambda messages, tools: "")
    assert batched(simulation, 8) is simulation  # no generate_many: as it is
