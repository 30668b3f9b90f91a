"""``stepwise think`` as a user meets it: runs, evaluations, resumes and clear errors."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from stepwise.agents.think.evaluate import pass_hat_k

from .conftest import REPO
from .test_cli import stepwise

EVAL_CASSETTE = REPO / "scenarios" / "think" / "cassettes" / "airline-eval-oracle.jsonl"


def think(*args: str, cwd=None):
    return stepwise("think", *args, cwd=cwd)


def test_a_world_task_runs_and_is_checked(tmp_path):
    done = think("--world", "airline", "--task", "cancel-insured", "--model",
                 "sim:airline-oracle", "--checkpoints", str(tmp_path / "c.sqlite"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "answered"
    assert result["task"] == {"id": "cancel-insured", "simulated": True, "success": True,
                              "differences": []}
    assert result["metrics"]["turns"] == 3


def test_a_run_prints_its_steps_and_the_simulation_label(tmp_path):
    done = think("--world", "airline", "--task", "book-six-passengers", "--model",
                 "sim:airline-oracle", "--checkpoints", str(tmp_path / "c.sqlite"))
    assert done.returncode == 0, done.stderr
    assert "→ think" in done.stderr and "← get_user" in done.stderr
    assert "success (simulated world)" in done.stderr and "think rate 0.33" in done.stderr


def test_eval_with_the_replayed_oracle_reports_every_task():
    done = think("--eval", "--world", "airline", "--model", f"replay:{EVAL_CASSETTE}",
                 "--think-tools", "think,verify", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == 18 and report["simulated"] is True
    assert report["success_rate"] == 1.0
    # 7 refusal tasks think once in 3 turns; 11 others never think in 3 or 4 turns.
    assert report["think_rate"] == pytest.approx(7 / (17 * 3 + 4), abs=1e-4)


def test_eval_with_a_tiny_random_model_runs_the_loop_for_real():
    done = think("--eval", "--world", "airline", "--model", "tiny", "--trials", "2", "--tasks",
                 "cancel-insured,book-six-passengers", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == 2 and report["trials"] == 2 and len(report["outcomes"]) == 4
    assert set(report["pass_hat_k"]) == {"1", "2"}
    # A random model takes no action, which fails every task that needs a change.
    insured = [o for o in report["outcomes"] if o["task"] == "cancel-insured"]
    assert not any(o["success"] for o in insured)
    assert insured[0]["differences"] and report["metrics"]["tokens_in"] > 0


def test_resume_goes_on_with_a_run_waiting_for_a_human(tmp_path):
    cassette = REPO / "scenarios" / "think" / "cassettes" / "think-pause-resume.jsonl"
    base = ["--model", f"replay:{cassette}", "--checkpoints", str(tmp_path / "c.sqlite")]
    paused = think("--world", "airline", "--task", "change-cabin-business", "--ask-human",
                   "--thread", "upgrade", *base)
    assert paused.returncode == 0, paused.stderr
    assert "waiting for a human: Upgrading F6J1S3" in paused.stderr
    assert "--resume upgrade" in paused.stderr
    done = think("--resume", "upgrade", "--answer", "Yes, go ahead.", "--json",  # settings kept
                 *base)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "answered" and result["task"]["success"] is True
    threads = sqlite3.connect(tmp_path / "c.sqlite").execute(
        "select count(distinct thread_id) from checkpoints").fetchone()
    assert threads == (1,)


@pytest.mark.parametrize(("args", "message"), [
    (["--world", "airline", "--task", "no-such-task"], "unknown airline task 'no-such-task'"),
    (["hi", "--think-tools", "think,ponder"], "unknown think tool 'ponder'"),
    (["--world", "airline", "--task", "cancel-insured", "--tools", "get_user,fly"],
     "unknown tool 'fly'"),
    (["--world", "mars", "--task", "x"], "unknown world 'mars'"),
    (["--eval"], "--task and --eval need --world"),
    (["hi", "--answer", "yes"], "--answer goes with --resume"),
    (["--world", "airline"], "give a request, --task ID"),
    (["--resume", "ghost", "--checkpoints", "{tmp}/c.sqlite"], "no checkpoints at"),
    (["--eval", "--world", "airline", "--tasks", "cancel-insured,zzz"], "unknown airline task 'zzz'"),
])
def test_user_mistakes_are_one_clear_line(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = think(*args, "--model", "sim:airline-oracle")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_think_prompt_without_its_placeholders_is_refused(tmp_path):
    prompt = tmp_path / "muse.md"
    prompt.write_text("---\ndescription: Muse.\n---\nThink about {request}.\n")
    done = think("hi", "--model", "sim:echo", "--think-tools", str(prompt))
    assert done.returncode == 2
    assert "muse.md: the template is missing {context}" in done.stderr


def test_a_model_is_required():
    done = think("hi")
    assert done.returncode == 2 and "give a model with --model" in done.stderr


def test_pass_hat_k_is_the_chance_all_k_trials_pass():
    assert pass_hat_k([(4, 4), (4, 0)], 1) == 0.5
    assert pass_hat_k([(4, 2)], 1) == 0.5
    assert pass_hat_k([(4, 2)], 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k([(4, 3)], 4) == 0.0


def test_bundled_think_scenarios_reproduce_from_their_scripts(tmp_path):
    """The scripted cassettes are what the scripts give through today's agent."""
    copy = tmp_path / "think"
    shutil.copytree(REPO / "scenarios" / "think", copy)
    (copy / "cassettes" / "airline-eval-oracle.jsonl").unlink()
    done = stepwise_script(copy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pass") == 4
    for cassette in (copy / "cassettes").glob("*.jsonl"):
        original = REPO / "scenarios" / "think" / "cassettes" / cassette.name
        assert cassette.read_text() == original.read_text(), cassette.name


def stepwise_script(folder):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(folder / "scripts.py")], capture_output=True,
                          text=True, timeout=120, check=False, cwd=REPO)
