"""One explore per run folder: a second one is refused while the first runs, a killed holder
leaves no stale lock, and a log that two writers appended to rebuilds each iteration once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.errors import StepwiseError
from stepwise.run_lock import RunInUse
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import LOCK_NAME, check_settings, explore_tasks, hold_run

from .test_explorer import ChainEnv

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="runs are locked with flock")

HOLDER = """
import sys, time
from stepwise.search.run import hold_run
with hold_run(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def in_use(out: Path, pid: int) -> str:
    return f"{out} is in use by another explore (pid {pid}); wait for it or use another --out"


def start_holder(out: Path) -> subprocess.Popen:
    """Another process exploring in ``out``: it holds the run folder's lock until killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def kill(holder: subprocess.Popen) -> None:
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: only the OS can free the lock
    holder.wait()
    holder.stdout.close()


@pytest.fixture
def holder(tmp_path):
    process = start_holder(tmp_path / "run")
    yield process
    if process.poll() is None:
        kill(process)


@pytest.mark.timeout(120)
def test_explore_tasks_on_a_folder_in_use_is_refused_before_any_search(tmp_path, holder):
    out = tmp_path / "run"
    with pytest.raises(StepwiseError) as refused:
        explore_tasks(["chain"], lambda task: ChainEnv(), ExploreOptions(simulations=4), out,
                      env_name="chain")
    assert str(refused.value) == in_use(out, holder.pid)
    assert isinstance(refused.value, RunInUse)  # the one run lock's refusal, as simulate's
    assert not (out / "events").exists() and not (out / "summary.json").exists()


@pytest.mark.timeout(120)
def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    out = tmp_path / "run"
    with pytest.raises(StepwiseError, match="in use by another explore"), hold_run(out):
        pass
    kill(holder)
    assert (out / LOCK_NAME).is_file()  # the file stays; the lock went with the process
    with hold_run(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    report = explore_tasks(["chain"], lambda task: ChainEnv(), ExploreOptions(simulations=4),
                           out, env_name="chain")
    assert report.finished == 1 and report.iterations == 4


@pytest.mark.timeout(240)
def test_cli_explore_and_resume_on_a_folder_in_use_are_one_error_line(tmp_path):
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    out = tmp_path / "run"
    command = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
               "--simulations", "4", "--out", str(out)]
    holder = start_holder(out)
    try:
        for extra in ([], ["--resume"]):
            result = CliRunner().invoke(app, [*command, *extra])
            assert result.exit_code == 2, result.output
            lines = [line for line in result.output.splitlines() if line.startswith("error:")]
            assert lines == [f"error: {in_use(out, holder.pid)}"], result.output
        assert not (out / "run.json").exists()  # refused before the settings were written
    finally:
        kill(holder)
    result = CliRunner().invoke(app, command)  # the kill freed the folder
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["finished"] == 1


def test_a_nested_hold_in_one_thread_is_shared_and_another_thread_is_refused(tmp_path):
    out = tmp_path / "run"
    refused: list[str] = []

    def second() -> None:
        try:
            with hold_run(out):
                pass
        except StepwiseError as error:
            refused.append(str(error))

    with hold_run(out):
        with hold_run(out):  # the CLI holds the folder, then explore_tasks does
            pass
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert refused == [in_use(out, os.getpid())]
    with hold_run(out):  # released once the outer hold ended
        pass


def test_resuming_into_a_folder_holding_only_the_lock_is_a_fresh_start(tmp_path):
    out = tmp_path / "run"
    with hold_run(out):
        check_settings(out, {"seed": 0}, resume=True)
    assert json.loads((out / "run.json").read_text()) == {"seed": 0}


def rebuilt(log: Path, options: dict) -> Explorer:
    explorer = Explorer(ChainEnv(), ExploreOptions(**options), EventLog(log), env_name="chain")
    explorer.run()
    return explorer


@pytest.mark.parametrize("options", [{"simulations": 24, "seed": 3},
                                     {"simulations": 24, "parallel": 2, "seed": 3},
                                     {"per_step": 4, "seed": 3}])
@pytest.mark.parametrize("layout", ["interleaved", "one_after_the_other"])
def test_a_duplicated_iteration_is_applied_once(tmp_path, options, layout):
    """A run and a resume started beside it both log the iterations after the resume's
    start: the rebuild equals the tree of the unique iterations (not 48 visits for 24)."""
    once = rebuilt(tmp_path / "once.jsonl", options)
    lines = (tmp_path / "once.jsonl").read_text().splitlines(keepends=True)
    start = len(lines) // 3  # where the second writer read the log and went on
    again = lines[start:]
    if layout == "interleaved":
        tail = [line for pair in zip(again, again, strict=True) for line in pair]
    else:
        tail = again + again
    (tmp_path / "twice.jsonl").write_text("".join(lines[:start] + tail))
    twice = rebuilt(tmp_path / "twice.jsonl", options)
    assert twice.tree.root.visits == once.tree.root.visits
    assert len(twice.tree.nodes) == len(once.tree.nodes)
    assert twice.tree.to_json() == once.tree.to_json()
    assert len((tmp_path / "twice.jsonl").read_text().splitlines()) == len(lines) + len(again)
