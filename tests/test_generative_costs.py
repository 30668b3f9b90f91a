"""Cost accounting and the paper's measures of a run (issue 18 items 4 and 5): requests,
tokens and wall time per agent and game hour, saved with each step and printed at the end
of simulate; a cassette that replays the run without a model; diffusion judged by a
stated keyword judge, density over who talked, and the party's attendance."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from typer.testing import CliRunner

from stepwise.agents.generative import town_metrics
from stepwise.agents.generative.costs import Ledger, cost_report, read_costs
from stepwise.agents.generative.metrics import (
    conversation_edges,
    network_density,
    relationship_edges,
)
from stepwise.agents.generative.simulation import Simulation
from stepwise.agents.generative.townsfolk import TownsfolkSimChatModel
from stepwise.sim.sandbox import bundled_world
from stepwise.testing.responding import RespondingChatModel

DATA = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data"
runner = CliRunner()


def fake() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=16)


def party_run(folder: Path, model=None) -> Simulation:
    return Simulation.create(DATA / "party.json", folder, model or TownsfolkSimChatModel(),
                             embeddings=fake())


def totals(run: Simulation) -> tuple[int, int, int]:
    total = run.cost_report()["total"]
    return total["requests"], total["tokens_in"], total["tokens_out"]


# -- the ledger ---------------------------------------------------------------------------

def test_requests_are_counted_per_agent_and_game_hour_and_sum_up():
    now = [dt.datetime(2023, 2, 14, 9, 50)]
    ledger = Ledger(lambda: now[0])
    ledger.add("Ann", 10, 2, 0.5)
    now[0] = dt.datetime(2023, 2, 14, 10, 0)
    ledger.add("Ann", 5, 1, 0.25)
    ledger.add("Bob", 7, 3, 1.0)
    import sqlite3

    from stepwise.agents.generative.costs import SCHEMA
    db = sqlite3.connect(":memory:")
    db.execute(SCHEMA)
    ledger.save(db)
    ledger.add("Bob", 1, 1, 0.0)
    ledger.save(db)  # adds to the hour's row
    report = cost_report(read_costs(db), ["Ann", "Bob", "Cy"])
    assert report["total"] == {"requests": 4, "tokens_in": 23, "tokens_out": 7,
                               "seconds": 1.75}
    assert [(h["hour"], h["requests"]) for h in report["per_hour"]] == [
        ("2023-02-14 09:00", 1), ("2023-02-14 10:00", 3)]
    assert report["per_agent"][2] == {"agent": "Cy", "requests": 0, "tokens_in": 0,
                                      "tokens_out": 0, "seconds": 0.0}
    assert report["agent_hours"] == 6 and report["requests_per_agent_hour"] == 0.67


def test_a_run_counts_every_request_and_a_resumed_run_the_same_as_a_whole_one(tmp_path):
    asked = []

    def counting(messages, tools):
        asked.append(1)
        return TownsfolkSimChatModel().invoke(messages)

    with party_run(tmp_path / "whole", RespondingChatModel(respond=counting)) as run:
        run.run(4)
        whole = totals(run)
    assert whole[0] == len(asked) and whole[1] > 0 and whole[2] > 0
    with party_run(tmp_path / "parts") as run:
        run.run(2)
    with Simulation.open(tmp_path / "parts", TownsfolkSimChatModel(), embeddings=fake()) as run:
        run.run(2)
        assert totals(run) == whole


def test_a_step_that_fails_counts_none_of_its_requests(tmp_path):
    with party_run(tmp_path / "run") as run:
        run.run(1)
        before = totals(run)
    calls = []

    def breaks(messages, tools):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("server went away")
        return TownsfolkSimChatModel().invoke(messages)

    with Simulation.open(tmp_path / "run", RespondingChatModel(respond=breaks),
                         embeddings=fake()) as run, pytest.raises(RuntimeError):
        run.run(1)
    with Simulation.inspect(tmp_path / "run") as run:
        assert totals(run) == before


# -- the measures -------------------------------------------------------------------------

def test_density_counts_who_talked_not_who_is_named_in_seed_memories():
    party = bundled_world("party")
    names = sorted(party.agents)
    mentions = relationship_edges({n: a.memories for n, a in party.agents.items()})
    assert round(network_density(names, mentions), 2) == 0.67  # before anyone talked
    assert network_density(names, conversation_edges([])) == 0.0
    talked = conversation_edges([["Maria Lopez", "Isabella Rodriguez"],
                                 ["Isabella Rodriguez", "Maria Lopez"],
                                 ["Klaus Mueller", "Klaus Mueller"]])
    assert talked == [("Isabella Rodriguez", "Maria Lopez")]
    assert round(network_density(names, talked), 3) == 0.333


def entry(time: str, where: dict[str, str], conversations=()) -> dict:
    return {"time": time, "agents": {n: {"location": w} for n, w in where.items()},
            "conversations": list(conversations)}


def test_attendance_is_the_share_of_those_told_who_were_there_in_time():
    party = bundled_world("smallville").spec.events[0]
    told = {"pair": ["Isabella Rodriguez", "Maria Lopez"],
            "turns": [["Isabella Rodriguez", "I'm planning a party at Hobbs Cafe tonight."],
                      ["Maria Lopez", "I'd love to come to the party!"]]}
    chat = {"pair": ["Maria Lopez", "Klaus Mueller"],
            "turns": [["Maria Lopez", "Have you heard? There is a party at Hobbs Cafe."]]}
    other = {"pair": ["Tom Moreno", "Jane Moreno"], "turns": [["Tom Moreno", "A party!"]]}
    entries = [entry("2023-02-14T09:00", {}, [told, chat, other]),
               entry("2023-02-14T16:50", {"Maria Lopez": "Hobbs Cafe/seating area",
                                          "Klaus Mueller": "Hobbs Cafe/counter"}),
               entry("2023-02-14T17:00", {"Maria Lopez": "Hobbs Cafe/seating area",
                                          "Klaus Mueller": "Oak Hill College dorm"}),
               entry("2023-02-14T19:00", {"Klaus Mueller": "Hobbs Cafe/counter"})]
    invited = town_metrics.told(entries, party)
    assert invited == ["Klaus Mueller", "Maria Lopez"]  # not the host; not "A party!"
    assert town_metrics.attended(entries, party, invited) == ["Maria Lopez"]
    assert town_metrics.attended(entries[:2], party, invited) is None  # not reached yet
    assert "'party', 'Hobbs Cafe'" in town_metrics.judge_statement(party)


# -- the command line ---------------------------------------------------------------------

@pytest.fixture()
def cli(monkeypatch):
    from stepwise.cli import app, generative

    monkeypatch.setattr(generative, "EMBEDDINGS", fake())
    return lambda *args: runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})


def test_simulate_prints_and_saves_the_costs_and_the_measures(cli, tmp_path):
    out = tmp_path / "town"
    done = cli("simulate", "smallville", "--steps", "2", "--out", out)
    assert done.exit_code == 0, done.output
    costs = json.loads((out / "costs.json").read_text())
    assert costs["simulated"] is True and costs["model"] == "sim:townsfolk"
    assert len(costs["per_agent"]) == 25 and costs["total"]["requests"] > 25
    assert costs["total"]["requests"] == sum(a["requests"] for a in costs["per_agent"])
    assert "model requests per agent" in done.output and "model requests per game hour" in \
        done.output and "per agent-hour" in done.output
    measured = json.loads((out / "metrics.json").read_text())
    party, candidacy = measured["events"]
    assert party["knowers"] == ["Isabella Rodriguez"] and party["attended"] is None
    assert candidacy["knowers"] == ["Sam Moore"] and measured["interview_requests"] == 50
    assert "keyword judge" in done.output and "network density" in done.output
    assert not list(out.glob(".*.tmp"))  # written atomically, nothing left beside


def test_a_recorded_run_replays_from_its_cassette_without_a_model(cli, tmp_path):
    tape = tmp_path / "party.jsonl"  # each recorded answer is synced: a small town
    first = cli("simulate", "party", "--steps", "3", "--out", tmp_path / "a",
                "--record", tape, "--no-metrics")
    assert first.exit_code == 0, first.output
    again = cli("simulate", "party", "--steps", "3", "--out", tmp_path / "b",
                "--model", f"replay:{tape}", "--no-metrics")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "a" / "steps.jsonl").read_bytes() == \
        (tmp_path / "b" / "steps.jsonl").read_bytes()
    a, b = (json.loads((tmp_path / x / "costs.json").read_text()) for x in "ab")
    assert {k: v for k, v in a["total"].items() if k != "seconds"} == \
        {k: v for k, v in b["total"].items() if k != "seconds"}
    assert not (tmp_path / "b" / "metrics.json").exists()


def test_a_bad_mechanisms_value_is_one_error_line(cli, tmp_path):
    done = cli("simulate", "party", "--steps", "1", "--out", tmp_path / "r",
               "--mechanisms", "fancy")
    assert done.exit_code != 0 and "error: --mechanisms is 'paper' or 'basic', not 'fancy'" \
        in done.output
