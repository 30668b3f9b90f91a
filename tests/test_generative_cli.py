"""The generative-agents commands say what they did in words that fit: one run-folder lock
shared by every writing command, a deeply nested world named in a short line, steps counted
as the log numbers them, and memories shown whole at 80 columns or as JSON (issue 19 items
9 and 12, issue 16 items 15 and 19)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from rich.cells import cell_len
from typer.testing import CliRunner

from stepwise.agents.generative.simulation import STEP_LOG, Simulation
from stepwise.run_lock import RunInUse, lock_run
from stepwise.sim.sandbox.errors import WorldError
from stepwise.sim.sandbox.spec import read_world_spec

from .conftest import json_objects

PARTY = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data" / \
    "party.json"
HOLDER = """
import sys, time
from stepwise.run_lock import lock_run
lock = lock_run(sys.argv[1], "test.lock", "tester", "try again later")
print("held", flush=True)
time.sleep(600)
"""
flock_only = pytest.mark.skipif(sys.platform == "win32", reason="runs are locked with flock")


def nested(levels: int) -> str:
    """A WORLD.json whose one area holds an area, ``levels`` deep."""
    return ('{"name": "deep", "clock": {"start": "2023-02-13T08:00", "minutes_per_step": 10}, '
            '"areas": [' + '{"name": "a", "x": 0, "y": 0, "areas": [' * levels
            + "]}" * levels + "]}")


def flat(text: str) -> str:
    """``text`` with every run of whitespace one space, so wrapped lines read as one."""
    return " ".join(text.split())


# -- the run lock ---------------------------------------------------------------------------

@flock_only
@pytest.mark.timeout(60)
def test_a_second_holder_is_refused_naming_the_first_ones_pid_until_it_is_killed(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse) as refused:
            lock_run(folder, "test.lock", "tester", "try again later")
        assert str(refused.value) == (f"{folder} is in use by another tester (pid "
                                      f"{holder.pid}); try again later")
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup: only the OS frees the lock
        holder.wait()
        holder.stdout.close()
    with lock_run(folder, "test.lock", "tester"):
        assert (folder / "test.lock").read_text().strip() == str(os.getpid())


@flock_only
def test_a_lock_shared_in_its_thread_still_refuses_other_threads_and_unshared_takers(tmp_path):
    folder, refused = tmp_path / "run", []

    def from_another_thread() -> None:
        try:
            lock_run(folder, "x.lock", "explore", shared_in_thread=True).release()
        except RunInUse as error:
            refused.append(str(error))

    in_use = (f"{folder} is in use by another explore (pid {os.getpid()}); wait for it to "
              "finish or use another --out")
    with lock_run(folder, "x.lock", "explore", shared_in_thread=True):
        with lock_run(folder, "x.lock", "explore", shared_in_thread=True):
            pass  # a command holds the folder, then the library call it makes does
        with pytest.raises(RunInUse):  # a simulation's lock is not shared, even here
            lock_run(folder, "x.lock", "explore")
        thread = threading.Thread(target=from_another_thread)
        thread.start()
        thread.join()
        assert refused == [in_use]
    thread = threading.Thread(target=from_another_thread)
    thread.start()
    thread.join()
    assert refused == [in_use]  # free once the outer hold ended


# -- worlds nested deeply -------------------------------------------------------------------

@pytest.mark.parametrize("levels", [300, 400])
def test_a_world_nested_hundreds_of_levels_is_a_short_line_naming_the_depth(tmp_path, levels):
    world = tmp_path / "deep.json"
    world.write_text(nested(levels), "utf-8")
    with pytest.raises(WorldError) as refused:
        read_world_spec(world)
    message = str(refused.value)
    assert message.startswith(f"{world}: areas['a'].areas['a']") and " … " in message
    depth = re.search(r"\((\d+) levels deep\)", message)
    assert depth and 100 < int(depth.group(1)) <= levels
    assert len(message) < len(str(world)) + 160
    assert "nest too deeply" in message


def test_a_world_too_deep_for_the_json_decoder_is_a_world_error(tmp_path):
    world = tmp_path / "deeper.json"
    world.write_text(nested(3000), "utf-8")
    with pytest.raises(WorldError, match="the file nests too deeply to read"):
        read_world_spec(world)


# -- the command line -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli():
    """The command line at 80 columns, as in a pipe, with cheap embeddings."""
    from stepwise.cli import app, generative

    runner = CliRunner(env={"COLUMNS": "80"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generative, "EMBEDDINGS", DeterministicFakeEmbedding(size=16))
        yield lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def six_steps(cli, tmp_path_factory) -> tuple[Path, str]:
    """A party run that has taken 6 steps, and what simulate printed."""
    run = tmp_path_factory.mktemp("generative") / "run"
    done = cli("simulate", PARTY, "--steps", 6, "--out", run)
    assert done.exit_code == 0, done.output
    return run, done.output


def test_simulate_counts_the_steps_it_took_as_the_log_numbers_them(cli, six_steps):
    run, output = six_steps
    assert "party: 6 steps done (steps 0-5)," in output
    logged = (run / STEP_LOG).read_text("utf-8").splitlines()
    assert len(logged) == 6 and '"step": 5' in logged[-1]
    idle = cli("simulate", PARTY, "--steps", 0, "--out", run, "--resume")
    assert idle.exit_code == 0, idle.output
    assert "party: no steps taken (the run has taken 6 steps)," in idle.output
    assert "steps 6-" not in idle.output and "done" not in idle.output


def test_memory_at_80_columns_shows_every_memory_whole(cli, six_steps):
    run, _ = six_steps
    shown = cli("memory", run, "Maria Lopez", "--query", "party", "--k", 4)
    assert shown.exit_code == 0, shown.output
    with Simulation.inspect(run, embeddings=DeterministicFakeEmbedding(size=16)) as looked:
        texts = [m.text for m in looked.agent("Maria Lopez").stream.memories()]
    assert sum(flat(text) in flat(shown.output) for text in texts) >= 4, shown.output
    assert "…" not in shown.output
    assert all(cell_len(line.rstrip()) <= 80 for line in shown.output.splitlines())
    assert re.match(r"Maria Lopez: 4 of \d+ memories for 'party'", shown.output)


def test_memory_json_is_one_object_per_memory_best_first(cli, six_steps):
    run, _ = six_steps
    done = cli("memory", run, "Maria Lopez", "--query", "party", "--k", 3, "--json")
    assert done.exit_code == 0, done.output
    found = json_objects(done.output)
    assert len(found) == 3
    assert [m["score"] for m in found] == sorted((m["score"] for m in found), reverse=True)
    for memory in found:
        assert {"id", "score", "recency", "importance", "relevance", "kind", "created",
                "memory"} <= set(memory)
        assert memory["memory"].strip() and memory["simulated"] is True
    shown = cli("memory", run, "Maria Lopez", "--query", "party", "--k", 3)
    assert [int(i) for i in re.findall(r"^id:\s+(\d+)", shown.output, re.MULTILINE)] == [
        m["id"] for m in found]
