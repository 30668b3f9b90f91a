"""The paper's 10-second steps (issue 18): a world clock counted in seconds, from the world
file or ``--step-seconds``; log times to the second; an hour's cool-down whatever the step."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from typer.testing import CliRunner

from stepwise.agents.generative.dialogue import cooldown_steps
from stepwise.agents.generative.simulation import RUN_DB, STEP_LOG

PARTY = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data" / \
    "party.json"
PARTY_WORLD = json.loads(PARTY.read_text("utf-8"))
runner = CliRunner()


@pytest.fixture()
def cli(monkeypatch):
    from stepwise.cli import app, generative

    monkeypatch.setattr(generative, "EMBEDDINGS", DeterministicFakeEmbedding(size=16))
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def times(run: Path) -> list[str]:
    return [json.loads(line)["time"] for line in (run / STEP_LOG).read_text().splitlines()]


def settings(run: Path) -> dict:
    with closing(sqlite3.connect(run / RUN_DB)) as db:
        return json.loads(db.execute("SELECT settings_json FROM generative_run").fetchone()[0])


def test_step_seconds_takes_ten_second_steps_and_a_resume_keeps_them(cli, tmp_path):
    run = tmp_path / "run"
    first = cli("simulate", PARTY, "--steps", 3, "--out", run, "--step-seconds", 10,
                "--no-metrics")
    assert first.exit_code == 0, first.output
    assert times(run) == ["2023-02-13T08:00:00", "2023-02-13T08:00:10",
                          "2023-02-13T08:00:20"]
    assert settings(run)["step_seconds"] == 10
    assert settings(run)["cooldown"] == 360  # an hour of 10-second steps
    more = cli("simulate", PARTY, "--steps", 2, "--out", run, "--resume", "--no-metrics")
    assert more.exit_code == 0, more.output
    assert times(run)[3:] == ["2023-02-13T08:00:30", "2023-02-13T08:00:40"]
    assert "game time 2023-02-13 08:00:50" in more.output


def test_a_world_file_may_count_its_steps_in_seconds(cli, tmp_path):
    world, run = tmp_path / "world.json", tmp_path / "run"
    world.write_text(json.dumps({**PARTY_WORLD, "clock": {
        "start": "2023-02-13T08:00:00", "seconds_per_step": 30}}), "utf-8")
    result = cli("simulate", world, "--steps", 2, "--out", run, "--no-metrics")
    assert result.exit_code == 0, result.output
    assert times(run) == ["2023-02-13T08:00:00", "2023-02-13T08:00:30"]
    assert settings(run)["cooldown"] == 120


@pytest.mark.parametrize("clock", [{"start": "2023-02-13T08:00:00"},
                                   {"start": "2023-02-13T08:00:00", "minutes_per_step": 10,
                                    "seconds_per_step": 10}], ids=["neither", "both"])
def test_a_clock_needs_exactly_one_step_length_and_says_so_in_one_line(cli, tmp_path, clock):
    world, run = tmp_path / "world.json", tmp_path / "run"
    world.write_text(json.dumps({**PARTY_WORLD, "clock": clock}), "utf-8")
    result = cli("simulate", world, "--steps", 1, "--out", run)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "minutes_per_step or as seconds_per_step" in errors[0]
    assert "Traceback" not in result.output and not run.exists()


def test_ten_minute_runs_keep_their_minute_stamps_and_six_step_cooldown(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("simulate", PARTY, "--steps", 2, "--out", run, "--no-metrics").exit_code == 0
    assert times(run) == ["2023-02-13T08:00", "2023-02-13T08:10"]
    assert settings(run)["cooldown"] == 6 and settings(run)["step_seconds"] is None


@pytest.mark.parametrize(("step", "steps"), [
    (dt.timedelta(minutes=10), 6), (dt.timedelta(seconds=10), 360),
    (dt.timedelta(minutes=7), 9), (dt.timedelta(hours=2), 1)])
def test_the_cooldown_is_an_hour_of_game_time_in_whole_steps(step, steps):
    assert cooldown_steps(step) == steps


def plan_queries(tmp_path: Path, monkeypatch, steps: int, **settings) -> list[int]:
    """How many "plans for today" retrievals each step of a party run made."""
    from stepwise.agents.generative.simulation import Simulation
    from stepwise.agents.generative.townsfolk import TownsfolkSimChatModel
    from stepwise.memory.stream import MemoryStream

    asked: list[str] = []
    real = MemoryStream.retrieve

    def retrieve(self, query, **kwargs):
        asked.append(query if isinstance(query, str) else "")
        return real(self, query, **kwargs)

    monkeypatch.setattr(MemoryStream, "retrieve", retrieve)
    per_step = []
    with Simulation.create(PARTY, tmp_path / "run", TownsfolkSimChatModel(),
                           embeddings=DeterministicFakeEmbedding(size=16), **settings) as run:
        for _ in range(steps):
            asked.clear()
            run.step()
            per_step.append(sum(q.endswith("plans for today") for q in asked))
    return per_step


def test_a_day_plan_retrieves_its_memories_only_when_the_day_is_planned(tmp_path,
                                                                          monkeypatch):
    assert plan_queries(tmp_path / "new", monkeypatch, 3) == [3, 0, 0]  # three agents
    assert plan_queries(tmp_path / "old", monkeypatch, 3,
                        plan_memories="every step") == [3, 3, 3]


def test_a_run_saved_before_plan_memories_resumes_retrieving_them_every_step():
    from stepwise.agents.generative.simulation import RunSettings

    old = RunSettings.stored('{"world": "party.json", "radius": 2.0, "max_turns": 6, '
                             '"cooldown": 6, "threshold": 150, "preset": "paper", '
                             '"mechanisms": "paper"}')
    assert old.plan_memories == "every step" and old.step_seconds is None
    assert RunSettings(world="party.json").plan_memories == "when planning"


def test_ten_second_steps_are_the_same_at_any_concurrency_and_after_a_resume(cli, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli("simulate", PARTY, "--steps", 12, "--out", whole, "--step-seconds", 10,
               "--no-metrics").exit_code == 0
    assert cli("simulate", PARTY, "--steps", 5, "--out", parts, "--step-seconds", 10,
               "--concurrency", 3, "--no-metrics").exit_code == 0
    assert cli("simulate", PARTY, "--steps", 7, "--out", parts, "--resume", "--concurrency", 2,
               "--no-metrics").exit_code == 0
    assert (parts / STEP_LOG).read_bytes() == (whole / STEP_LOG).read_bytes()
