"""A newcomer's first hour: real text refused by the simulated translator, and Ctrl-C that
stops an explore at a round, says how to resume, and a resume that counts the whole run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import resume_command, stop_on_ctrl_c
from stepwise.errors import StepwiseError
from stepwise.search.options import ExploreOptions
from stepwise.search.run import explore_tasks, simulations_done

from .conftest import REPO
from .test_explorer import ChainEnv

REFUSAL = ("error: sim:translator translates only the simulated language qsy (stepwise sim "
           "make); for en -> zh use a real model: hf:smollm2, hf:PATH or openai:URL")


@pytest.fixture
def english(tmp_path):
    """A folder holding one real English document and its Chinese reference."""
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "doc0.en").write_text("Anna waited at the station.\nThe train was late.\n",
                                    encoding="utf-8")
    (folder / "doc0.zh").write_text("安娜在车站等候。\n火车晚点了。\n", encoding="utf-8")
    return folder


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_translate_and_explore_refuse_real_text_with_the_simulated_translator(english,
                                                                              tmp_path):
    out = tmp_path / "tx"
    result = CliRunner().invoke(app, ["translate", str(english / "doc0.en"), "--src", "en",
                                      "--tgt", "zh", "-m", "sim:translator", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [REFUSAL]
    assert not out.exists()  # stopped before any page
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["explore", str(english), "--src", "en", "--tgt", "zh",
                                      "-m", "sim:translator", "--out", str(run)])
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [REFUSAL]
    assert not run.exists()  # refused before the run folder was made


def test_the_refusal_is_in_the_spec_every_longmt_search_starts_from(english):
    from stepwise.agents.environments import EnvSpec

    spec = EnvSpec(env="longmt", dataset=str(english), model="sim:translator", src="en",
                   tgt="zh")
    with pytest.raises(StepwiseError) as refused:
        spec.task_ids()
    assert f"error: {refused.value}" == REFUSAL
    other = spec.model_copy(update={"model": "openai:http://localhost:8000/v1"})  # a real one
    assert other.task_ids() == ["doc0"]


def test_resume_command_is_the_command_line_with_resume(monkeypatch):
    fallback = "stepwise explore DATA --out RUN --resume"
    monkeypatch.setattr(sys, "argv", ["/bin/stepwise", "explore", "my data.jsonl", "--out", "r"])
    assert resume_command("explore", fallback) == \
        "stepwise explore 'my data.jsonl' --out r --resume"
    monkeypatch.setattr(sys, "argv", ["stepwise", "explore", "d", "--no-resume", "--out", "r"])
    assert resume_command("explore", fallback) == "stepwise explore d --out r --resume"
    monkeypatch.setattr(sys, "argv", ["stepwise", "explore", "d", "--resume", "--out", "r"])
    assert resume_command("explore", fallback) == "stepwise explore d --resume --out r"
    monkeypatch.setattr(sys, "argv", ["stepwise", "demo", "--out", "d"])  # demo runs explore
    assert resume_command("explore", fallback) == fallback


def test_the_second_ctrl_c_exits_at_once_with_130_and_the_hint(monkeypatch, capsys):
    def exit_now(code: int) -> None:  # the real one would end pytest
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    before = signal.getsignal(signal.SIGINT)
    hint = "stepwise explore d --out r --resume"
    with pytest.raises(SystemExit) as exited, stop_on_ctrl_c("simulation round", hint) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()  # the first only asks the work to stop
        signal.raise_signal(signal.SIGINT)
    assert exited.value.code == 130
    first = ("stopping after the current simulation round (Ctrl-C again to stop now); "
             f"resume with: {hint}")
    assert capsys.readouterr().err.splitlines() == [first, f"interrupted; resume with: {hint}"]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_stop_ends_each_task_at_a_round_and_a_resume_counts_the_whole_run(tmp_path):
    """In process: the stop is asked for after three rounds of the first task."""
    import threading

    stop = threading.Event()
    options = ExploreOptions(simulations=12, seed=0)
    tasks = ["a", "b"]

    def make_env(task_id: str) -> ChainEnv:
        env = ChainEnv()
        env.task_id = task_id
        return env

    def on_iteration(task_id: str, iteration: int) -> None:
        if iteration == 3:
            stop.set()

    report = explore_tasks(tasks, make_env, options, tmp_path, env_name="chain",
                           on_iteration=on_iteration, stop=stop)
    assert report.stopped == tasks and report.finished == 0 and not report.failed
    assert simulations_done(tmp_path, tasks, options) == 3  # where the resumed bar starts
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == tasks
    again = explore_tasks(tasks, make_env, options, tmp_path, env_name="chain")
    assert again.stopped == [] and again.finished == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["finished"], summary["iterations"], summary["sessions"]) == (2, 24, 2)
    assert simulations_done(tmp_path, tasks, options) == 24


@pytest.mark.timeout(180)
def test_first_ctrl_c_stops_explore_soon_with_the_hint_and_resume_finishes(tmp_path):
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(2, 0), tmp_path / "synth")
    run = tmp_path / "run"
    args = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
            "--simulations", "24", "--out", str(run)]
    child = subprocess.Popen([sys.executable, "-m", "stepwise", *args], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    first_log = run / "events" / "synth-000.jsonl"
    deadline = time.monotonic() + 120
    while not (first_log.is_file() and first_log.stat().st_size) and child.poll() is None:
        assert time.monotonic() < deadline, "no round was logged"
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    hint = shlex.join(["stepwise", *args, "--resume"])
    assert child.returncode == 130, stderr
    lines = stderr.splitlines()
    assert (f"stopping after the current simulations (Ctrl-C again to stop now); "
            f"resume with: {hint}") in lines
    assert lines[-1] == f"stopped: 0 of 2 tasks finished; resume with: {hint}"
    assert not (run / "trees").exists()  # not the end of the document: the stop ended it
    stopped = json.loads((run / "summary.json").read_text())
    assert stopped["stopped"] == ["synth-000", "synth-001"]
    options = ExploreOptions(simulations=24)
    assert 1 <= simulations_done(run, ["synth-000", "synth-001"], options) < 24

    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["finished"], summary["iterations"], summary["stopped"]) == (2, 48, [])
    assert summary["sessions"] == 2
    assert summary["model_calls"]["calls"] == (stopped["model_calls"]["calls"]
                                               + summary["last_session"]["model_calls"]["calls"])
    straight = tmp_path / "straight"  # the same pairs as a run never interrupted
    assert CliRunner().invoke(app, [*args[:-1], str(straight)]).exit_code == 0
    assert (run / "pairs.jsonl").read_bytes() == (straight / "pairs.jsonl").read_bytes()
