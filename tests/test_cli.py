"""The command line as a user meets it: one clear line for every mistake, exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stepwise import __version__
from stepwise.cli import app

from .conftest import REPO

runner = CliRunner()


def stepwise(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The installed entry point in a real process (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "stepwise", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, check=False)


def test_help_and_version():
    assert "replay" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_replay_bundled_scenarios_passes():
    done = stepwise("replay", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout


def test_a_broken_expectation_makes_replay_exit_1(tmp_path):
    (tmp_path / "scenarios" / "cassettes").mkdir(parents=True)  # one scenario, not all of them
    shutil.copy(REPO / "scenarios" / "chat-echo.yaml", tmp_path / "scenarios")
    shutil.copy(REPO / "scenarios" / "cassettes" / "chat-echo.jsonl",
                tmp_path / "scenarios" / "cassettes")
    scenario = tmp_path / "scenarios" / "chat-echo.yaml"
    scenario.write_text(scenario.read_text().replace("crossed the river at dawn.\"",
                                                     "crossed the sea.\""))
    done = stepwise("replay", "scenarios", cwd=tmp_path)
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "1 failed" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["ask", "hi", "--model", "gpt:4"], "unknown model URI scheme 'gpt'"),
    (["ask", "hi", "--model", "replay:missing.jsonl"], "cassette not found: missing.jsonl"),
    (["ask", "hi", "--model", "openai:http://127.0.0.1:9/v1", "--model-name", "m"],
     "cannot connect"),
    (["replay", "nowhere"], "no such scenario file"),
    (["record", "absent.yaml", "--model", "sim:echo"], "no such scenario file"),
])
def test_bad_input_is_one_line_without_traceback(tmp_path, args, message):
    done = stepwise(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if args[0] != "replay":
        assert done.stderr.strip().count("\n") == 0, done.stderr


def test_verbose_shows_the_traceback(tmp_path):
    done = stepwise("--verbose", "ask", "hi", "--model", "replay:missing.jsonl", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" in done.stderr


def test_malformed_scenario_names_file_and_line(tmp_path):
    (tmp_path / "s.yaml").write_text("name: t\nagent: robot\ncassette: c.jsonl\n")
    done = stepwise("replay", "s.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert "s.yaml:2: agent: unknown agent 'robot'" in done.stdout.replace("\n", "")


def test_ask_and_record_round_trip(tmp_path):
    result = runner.invoke(app, ["ask", "hello", "--model", "sim:echo"])
    assert result.exit_code == 0 and "echo: hello" in result.output
    shutil.copy(REPO / "scenarios" / "chat-echo.yaml", tmp_path / "s.yaml")
    recorded = stepwise("record", "s.yaml", "--model", "sim:echo", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert (tmp_path / "cassettes" / "chat-echo.jsonl").exists()
    assert stepwise("replay", "s.yaml", cwd=tmp_path).returncode == 0


def test_tiny_command_writes_a_loadable_model(tmp_path):
    done = stepwise("tiny", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    asked = stepwise("ask", "hi", "--model", f"hf:{tmp_path / 'm'}", "--max-tokens", "4")
    assert asked.returncode == 0, asked.stderr
    again = stepwise("tiny", str(tmp_path / "m"))
    assert again.returncode == 2 and "not empty" in again.stderr
