"""A generative-agents simulation survives kills, refuses a second writer while its readers
go on, and turns unusable worlds into one line (issue 16, items 5, 7, 19 and 15's worlds).

Kills are real: a subprocess runs the command line with one function replaced by one that
calls ``os._exit`` at the named point, so nothing is cleaned up on the way out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from typer.testing import CliRunner

from stepwise.agents.generative import step_log
from stepwise.agents.generative.simulation import RUN_DB, STEP_LOG, Simulation
from stepwise.agents.generative.townsfolk import TownsfolkSimChatModel
from stepwise.testing.responding import RespondingChatModel

PARTY = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data" / \
    "party.json"
KILLED = 9
runner = CliRunner()

KILLER = r'''
import contextlib, os, pathlib, sys
from langchain_core.embeddings import DeterministicFakeEmbedding
from stepwise.agents.generative import simulation
from stepwise.cli import app, generative

generative.EMBEDDINGS = DeterministicFakeEmbedding(size=16)
point, args = sys.argv[1], sys.argv[2:]

def die(*args, **kwargs):
    os._exit(9)

if point == "creating":  # at the second agent's seed memories, inside the creation
    real_remember, calls = simulation.remember, []
    def remember(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return real_remember(*args, **kwargs)
    simulation.remember = remember
elif point.startswith("committed:"):  # right after the Nth commit (the creation is the 1st)
    nth, commits = int(point.split(":")[1]), []
    real_transaction = simulation.Simulation.transaction
    @contextlib.contextmanager
    def transaction(self):
        with real_transaction(self) as db:
            yield db
        commits.append(1)  # committed: the block ended without raising
        if len(commits) == nth:
            die()
    simulation.Simulation.transaction = transaction
elif point == "writing":  # any file written whole: half of it, then the kill
    def half(self, data, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[: len(data) // 2])
        die()
    pathlib.Path.write_text = half
    os.replace = die
app(args, prog_name="stepwise")
'''


def killed(point: str, *args: object) -> subprocess.CompletedProcess:
    """The command line ``args`` in a subprocess that is killed at ``point``."""
    return subprocess.run([sys.executable, "-c", KILLER, point, *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def fake_embeddings() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=16)


@pytest.fixture()
def cli(monkeypatch):
    from stepwise.cli import app, generative

    monkeypatch.setattr(generative, "EMBEDDINGS", fake_embeddings())
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def log_of(run: Path) -> str:
    return (run / STEP_LOG).read_text("utf-8")


def simulated(cli, run: Path, steps: int, *extra: str) -> str:
    result = cli("simulate", PARTY, "--steps", steps, "--out", run, *extra)
    assert result.exit_code == 0, result.output
    return result.output


# -- 5. a creation killed midway leaves a folder that holds no run --------------------------

@pytest.mark.parametrize("again", [(), ("--resume",)], ids=["rerun", "resume"])
def test_a_creation_killed_midway_holds_no_run_and_starts_again(cli, tmp_path, again):
    run = tmp_path / "run"
    cut = killed("creating", "simulate", PARTY, "--steps", "2", "--out", run)
    assert cut.returncode == KILLED, cut.stderr
    assert (run / RUN_DB).exists()  # the kill came after the database was made
    looked = cli("memory", run, "Maria Lopez", "--query", "party")
    assert looked.exit_code == 2 and "holds no simulation run" in looked.output
    assert "2 steps done (steps 0-1)" in simulated(cli, run, 2, *again)
    assert len(log_of(run).splitlines()) == 2
    assert error_lines(looked.output) == [(
        f"error: {run} holds no simulation run (its creation has not finished); start it with "
        f"stepwise simulate WORLD.json --out {run}")]


# -- 7. the step log is the database's -------------------------------------------------------

def test_a_kill_between_a_steps_commit_and_its_log_line_loses_no_line(cli, tmp_path):
    simulated(cli, tmp_path / "whole", 4)
    parts = tmp_path / "parts"
    cut = killed("committed:3", "simulate", PARTY, "--steps", "4", "--out", parts)
    assert cut.returncode == KILLED, cut.stderr
    with closing(sqlite3.connect(parts / RUN_DB)) as db:
        assert db.execute("SELECT step FROM world_clock").fetchone() == (2,)  # step 1 is in
    assert len(log_of(parts).splitlines()) == 1
    simulated(cli, parts, 2, "--resume")  # also: the killed writer left no lock behind
    assert log_of(parts) == log_of(tmp_path / "whole")


def test_readers_never_write_the_step_log(cli, tmp_path):
    run = tmp_path / "run"
    simulated(cli, run, 3)
    before = (run / STEP_LOG).read_bytes()
    for args in (("memory", run, "Maria Lopez", "--query", "party"),
                 ("interview", run, "Maria Lopez", "Is anyone planning a party?")):
        looked = killed("writing", *args)  # a write of any file would kill it
        assert looked.returncode == 0, looked.stderr
        assert "Maria Lopez" in looked.stdout
    assert (run / STEP_LOG).read_bytes() == before


def test_a_torn_last_line_is_read_past_and_repaired_atomically(cli, tmp_path):
    run = tmp_path / "run"
    simulated(cli, run, 3)
    whole = log_of(run)
    lines = whole.splitlines(keepends=True)
    torn = "".join(lines[:2]) + lines[2][: len(lines[2]) // 2]  # killed while appending
    (run / STEP_LOG).write_text(torn, "utf-8")
    looked = cli("memory", run, "Maria Lopez", "--query", "party")
    assert looked.exit_code == 0, looked.output
    assert log_of(run) == torn
    cut = killed("writing", "simulate", PARTY, "--steps", "1", "--out", run, "--resume")
    assert cut.returncode == KILLED, cut.stderr  # killed as the repair moved into place
    assert log_of(run) == torn
    simulated(cli, run, 1, "--resume")
    repaired = log_of(run)
    assert repaired.startswith(whole) and len(repaired.splitlines()) == 4
    assert [json.loads(line)["step"] for line in repaired.splitlines()] == [0, 1, 2, 3]


def test_a_repair_keeps_lines_holding_line_separators_and_drops_garbage(tmp_path):
    said = "one\u2028two\u0085three"
    lines = [json.dumps({"step": 0, "said": said}, ensure_ascii=False), '{"step": 1, "sa']
    log = tmp_path / STEP_LOG
    log.write_text("\n".join(lines), "utf-8")
    committed = {1: json.dumps({"step": 1, "said": "committed"})}
    assert step_log.repair(log, committed, steps=2)
    assert log.read_text("utf-8") == lines[0] + "\n" + committed[1] + "\n"
    assert not step_log.repair(log, committed, steps=2)  # already whole: left alone


# -- 19. one writer per run folder; readers meanwhile ----------------------------------------

class Gate:
    """A model that answers like sim:townsfolk, and when armed stops at its next call until
    released (a writer caught in the middle of a step)."""

    def __init__(self) -> None:
        self.armed, self.inside, self.go = False, threading.Event(), threading.Event()
        self.townsfolk = TownsfolkSimChatModel()
        self.model = RespondingChatModel(respond=self.respond)

    def respond(self, messages, tools):
        if self.armed:
            self.inside.set()
            self.go.wait(60)
        return self.townsfolk.invoke(messages).text


def test_a_second_writer_is_refused_at_once_while_readers_see_the_last_whole_step(cli,
                                                                                  tmp_path):
    run_dir, gate = tmp_path / "run", Gate()
    run = Simulation.create(PARTY, run_dir, gate.model, embeddings=fake_embeddings())
    run.run(1)
    memories = len(run.minds["Maria Lopez"].stream)
    gate.armed = True
    writer = threading.Thread(target=run.step)
    writer.start()
    try:
        assert gate.inside.wait(30)
        for again in ((), ("--resume",)):
            second = cli("simulate", PARTY, "--steps", "1", "--out", run_dir, *again)
            assert second.exit_code == 2
            assert error_lines(second.output) == [(
                f"error: {run_dir} is in use by another simulation (pid {os.getpid()}); wait "
                "for it to finish or use another --out")]
        looked = cli("memory", run_dir, "Maria Lopez", "--query", "party", "--k", "2")
        assert looked.exit_code == 0, looked.output
        assert f"of {memories} memories" in looked.output
        asked = cli("interview", run_dir, "Maria Lopez", "Is anyone planning a party?")
        assert asked.exit_code == 0, asked.output
    finally:
        gate.go.set()
        writer.join(60)
        run.close()
    assert len(log_of(run_dir).splitlines()) == 2
    assert "1 step done (step 2)" in simulated(cli, run_dir, 1, "--resume")


# -- 15. worlds a simulation cannot run: one line, nothing left behind -----------------------

PARTY_WORLD = json.loads(PARTY.read_text("utf-8"))
NESTED = ('{"name": "deep", "clock": {"start": "2023-02-13T08:00", "minutes_per_step": 10}, '
          '"areas": [' + '{"name": "a", "x": 0, "y": 0, "areas": [' * 3000 + "]}" * 3000 + "]}")


def with_clock(start: str, minutes: int = 10) -> str:
    return json.dumps({**PARTY_WORLD, "clock": {"start": start, "minutes_per_step": minutes}})


@pytest.mark.parametrize(("text", "steps", "message"), [
    (NESTED, 1, "the file nests too deeply to read"),
    (json.dumps({**PARTY_WORLD, "agents": []}), 1,
     "the world has no agents; a simulation needs at least one"),
    (with_clock("9999-12-31T23:40"), 3,
     "the clock can take 1 more 10-minute step from 9999-12-31 23:40"),
    (with_clock("2023-02-13T08:00", 10**12), 1, "the run can take no more steps"),
    (with_clock("9999-12-31T22:00-05:00"), 0, "is outside the years 1 to 9999 in UTC"),
], ids=["nested", "no agents", "end of time", "huge step", "behind UTC"])
def test_an_unusable_world_is_one_line_and_a_corrected_rerun_starts(cli, tmp_path, text,
                                                                      steps, message):
    world, run = tmp_path / "world.json", tmp_path / "run"
    world.write_text(text, "utf-8")
    result = cli("simulate", world, "--steps", steps, "--out", run)
    assert result.exit_code == 2
    assert error_lines(result.output) == result.output.strip().splitlines()
    assert len(error_lines(result.output)) == 1 and str(world) in result.output
    assert message in result.output and "Traceback" not in result.output
    assert not run.exists()
    world.write_text(PARTY.read_text("utf-8"), "utf-8")
    assert "1 step done (step 0)" in cli("simulate", world, "--steps", 1, "--out", run).output


def test_a_run_at_the_end_of_time_says_it_can_go_no_further(cli, tmp_path):
    world, run = tmp_path / "world.json", tmp_path / "run"
    world.write_text(with_clock("9999-12-31T23:40"), "utf-8")
    result = cli("simulate", world, "--steps", 1, "--out", run)
    assert result.exit_code == 0, result.output
    result = cli("simulate", world, "--steps", 1, "--out", run, "--resume")
    assert result.exit_code == 2
    assert error_lines(result.output) == [(
        f"error: {run}: the clock is at 9999-12-31 23:50, the last time its 10-minute steps "
        "can reach; the run can take no more steps")]
    assert len(log_of(run).splitlines()) == 1
    assert cli("simulate", world, "--steps", 0, "--out", run, "--resume").exit_code == 0
