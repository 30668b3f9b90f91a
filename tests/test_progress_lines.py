"""Progress off a terminal: plain lines with elapsed time and time left, not a live bar."""

from __future__ import annotations

import re
import time

from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import ProgressLines, _Counted, duration, progress_line

runner = CliRunner()
EVERY_LINE = {"STEPWISE_PROGRESS_EVERY": "0"}  # lines as often as they come, a closing one always


def run_cli(*args, env=EVERY_LINE):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_a_line_says_the_count_the_elapsed_time_and_the_time_left():
    assert progress_line("explore", 12, 48, "simulations", 65, 200) == (
        "explore: 12/48 simulations, 1m05s elapsed, about 3m20s left")
    assert progress_line("explore", 12, None, "simulations", 5) == (
        "explore: 12 simulations, 5s elapsed")  # per-step search: no total ahead
    assert progress_line("round 1 · evaluate", 0, None, "", 3725) == (
        "round 1 · evaluate: 1h02m elapsed")  # nothing counted: still says it runs
    assert progress_line("exploring", 1, 4, "simulations", 0.4, 1.2, "2.5 sim/s") == (
        "exploring: 1/4 simulations, 0s elapsed, about 1s left (2.5 sim/s)")
    assert [duration(s) for s in (0, 59.6, 60, 3599, 7200)] == ["0s", "1m00s", "1m00s",
                                                                "59m59s", "2h00m"]


def test_time_left_is_at_this_sessions_rate():
    resumed = _Counted("explore", total=50, completed=20, fields={}, started=0.0,
                       base=(0.0, 10))  # 10 done before this session, 10 more in 10 s
    assert resumed.left(10.0) == 30.0
    assert resumed.left(0.0) is None  # no rate yet
    assert _Counted("evaluate", None, 0, {}, 0.0).left(5.0) is None
    assert _Counted("explore", 4, 4, {}, 0.0, (0.0, 0)).left(5.0) is None  # done


def test_time_left_leaves_out_the_setup_before_the_first_unit():
    training = _Counted("train", total=10, completed=0, fields={}, started=0.0, base=(0.0, 0))
    training.completed = 1
    training.moved(300.0)  # five minutes of loading and precomputing, then the first step
    assert training.left(300.0) is None  # one step done: no rate yet
    training.completed = 3
    training.moved(400.0)
    assert training.left(400.0) == 7 * 50.0  # 2 steps in 100 s, not 3 in 400 s


def test_a_task_that_does_not_move_still_prints_lines(capsys):
    with ProgressLines("steps", every=0.05) as progress:
        progress.add_task("waiting", total=None)
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3  # ticks while nothing moves, then the closing line
    assert all(re.fullmatch(r"waiting: \d+s elapsed", line) for line in lines)


def test_a_short_task_prints_nothing(capsys):
    with ProgressLines("pages", every=60) as progress:
        task = progress.add_task("translating", total=3)
        progress.advance(task, 3)
    assert capsys.readouterr().err == ""


def test_explore_into_a_log_prints_plain_progress_lines(tmp_path):
    assert run_cli("sim", "make", "--docs", "1", "--out", tmp_path / "synth").exit_code == 0
    result = run_cli("explore", tmp_path / "synth" / "dataset.jsonl", "--model",
                     "sim:translator", "--simulations", "4", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("exploring")]
    assert lines and all(re.match(r"exploring[^:]*: \d/4 simulations, \d+s elapsed", line)
                         for line in lines)
    assert lines[-1].startswith("exploring synth-000: 4/4 simulations")
    assert "\x1b" not in result.stderr and "\r" not in result.stderr  # no terminal controls

    quiet = run_cli("-q", "explore", tmp_path / "synth" / "dataset.jsonl", "--model",
                    "sim:translator", "--simulations", "4", "--out", tmp_path / "run2")
    assert quiet.exit_code == 0 and "exploring" not in quiet.stderr


def test_loop_explore_counts_its_simulations(tmp_path):
    from stepwise.sim.translation import make_documents, write_dataset
    from stepwise.train.loop import LoopSettings, explore_round

    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    settings = LoopSettings(dataset=str(dataset), simulations=4, page_sentences=4)
    seen = []
    explore_round(settings, tmp_path / "explore", None, 1,
                  on_progress=lambda *progress: seen.append(progress))
    assert seen[0] == (0, 4, "simulations") and seen[-1] == (4, 4, "simulations")


def test_every_loop_stage_shows_its_own_progress(tmp_path, monkeypatch):
    """Each stage its own line: its name, its count and unit, its elapsed time from zero."""
    import stepwise.train.loop

    def stages(settings, out, on_stage=None, on_step=None, on_progress=None):
        on_stage(0, "baselines")
        on_progress(3, 7, "policies")
        on_stage(1, "explore")
        on_progress(2, 4, "simulations")
        on_stage(1, "evaluate")
        time.sleep(0.06)  # counts nothing: the ticks say it still runs
        return []

    monkeypatch.setattr(stepwise.train.loop, "run_loop", stages)
    assert run_cli("sim", "make", "--docs", "1", "--out", tmp_path / "synth").exit_code == 0
    result = run_cli("loop", tmp_path / "synth" / "dataset.jsonl", "--out", tmp_path / "loop")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "baselines: 3/7 policies, 0s elapsed" in lines
    assert "round 1 · explore: 2/4 simulations, 0s elapsed" in lines
    assert "round 1 · evaluate: 0s elapsed" in lines
    assert "\x1b" not in result.stderr


def test_the_baselines_name_the_row_they_measure_and_guess_no_time_left(tmp_path):
    """A model's held-out row takes minutes where a rule's takes a second: the count says
    which row runs and how many of its documents are done, and no time left is guessed."""
    from stepwise.cli.common import _Counted
    from stepwise.train.loop import UNTRAINED, LoopSettings, baseline_rows
    from tests.conftest import short_dataset

    dataset = short_dataset(tmp_path, lines=6)
    settings = LoopSettings(dataset=str(dataset), start="tiny", page_sentences=3,
                            decide="rank")
    seen = []
    rows = baseline_rows(settings, lambda *args, **kwargs: seen.append((args, kwargs)))
    assert list(rows)[-1] == UNTRAINED
    details = [args[3] for args, _ in seen if len(args) > 3]
    assert "none: 0/1 documents" in details and "none: 1/1 documents" in details
    assert details[-1] == "untrained tiny: 1/1 documents"
    assert all(kwargs == {"timed": False} for _, kwargs in seen)
    task = _Counted("baselines", 7, 6, {"timed": False}, 0.0, (0.0, 0))
    assert task.left(30.0) is None
    assert _Counted("baselines", 7, 6, {}, 0.0, (0.0, 0)).left(30.0) == 5.0
