"""Generative agents: reflection, importance, planning, dialogue, the world step, runs, CLI.

Models are scripted (``RespondingChatModel``) or the rule-based ``sim:townsfolk``; memory
streams use hashed embeddings, so nothing here loads the bundled MiniLM.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from stepwise.agents.generative import dialogue, planning, reflection
from stepwise.agents.generative.importance import DEFAULT_IMPORTANCE, rate, remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.planning import DAY, item, splice
from stepwise.agents.generative.prompts import (
    ACTIONS_HEAD,
    DAY_PLAN_HEAD,
    DIALOGUE_HEAD,
    HOUR_PLAN_HEAD,
    IMPORTANCE_HEAD,
    INSIGHTS_HEAD,
    QUESTIONS_HEAD,
)
from stepwise.agents.generative.simulation import RUN_DB, STEP_LOG, Simulation
from stepwise.agents.generative.state import new_agent
from stepwise.agents.generative.townsfolk import TownsfolkSimChatModel
from stepwise.memory.stream import MemoryStream
from stepwise.testing.responding import RespondingChatModel

PARTY = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data" / \
    "party.json"
NOW = datetime(2023, 2, 13, 8, 0)
runner = CliRunner()


def fake_embeddings() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=16)


def prompt_of(messages) -> str:
    return next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))


def mind(respond, name: str = "Ada Lovelace", stream: MemoryStream | None = None) -> Mind:
    stream = stream or MemoryStream(fake_embeddings(), clock=lambda: NOW)
    return Mind(name, f"{name} is an engineer.", RespondingChatModel(respond=respond), stream)


def ratings(value: int):
    """A model that rates every numbered memory ``value`` (and answers nothing else)."""
    def respond(messages, tools):
        prompt = prompt_of(messages)
        if not prompt.startswith(IMPORTANCE_HEAD):
            return "?"
        items = [line for line in prompt.splitlines() if line[:1].isdigit()]
        return "\n".join(f"{i}. {value}" for i in range(1, len(items) + 1))
    return respond


# -- reflection ---------------------------------------------------------------------------

def reflecting_model(insights: str, questions: str = "1. What matters?\n2. Who?\n3. Why?"):
    def respond(messages, tools):
        prompt = prompt_of(messages)
        if QUESTIONS_HEAD in prompt:
            return questions
        if INSIGHTS_HEAD in prompt:
            return insights
        return ratings(7)(messages, tools)
    return respond


def shown_ids(prompt: str) -> list[int]:
    """The memory ids a prompt shows (``[12] text`` lines), in order."""
    return [int(line[1:line.index("]")]) for line in prompt.splitlines()
            if line.startswith("[") and "]" in line]


def citing_the_first_two_shown(cited: list[int]):
    """A reflecting model whose one insight cites the first two memories it was shown."""
    def respond(messages, tools):
        prompt = prompt_of(messages)
        if INSIGHTS_HEAD in prompt:
            cited[:] = shown_ids(prompt)[:2]
            return f"1. Ada works hard (because of {cited[0]}, {cited[1]})"
        return reflecting_model("")(messages, tools)
    return respond


def test_reflection_fires_exactly_at_the_threshold_and_resets():
    cited: list[int] = []
    ada = mind(citing_the_first_two_shown(cited))
    agent = new_agent(ada.name)
    for i in range(14):
        ada.stream.add(f"observation {i}", importance=10, created=NOW)
    ada.stream.add("a small thing", importance=9, created=NOW)
    assert ada.stream.importance_since(None) == 149
    assert not reflection.due(ada, agent)
    ada.stream.add("one more", importance=1, created=NOW)
    assert reflection.due(ada, agent)  # exactly 150
    ids = reflection.reflect(ada, agent, NOW)
    assert len(ids) == 1 and ada.stream.get(ids[0]).kind == "reflection"
    assert ada.stream.get(ids[0]).evidence == tuple(cited) and ada.stream.get(ids[0]).depth == 1
    assert not reflection.due(ada, agent)  # reset, the new insight included
    assert agent["reflected_through"] == ids[0] and agent["counters"]["reflections"] == 1


def test_insights_citing_unknown_ids_are_dropped_and_reflections_build_on_reflections():
    answer = ("1. Ada loves engines (because of 0, 99)\n2. Ada has no evidence\n"
              "3. Ada is precise (because of 1)\n4. Ada is curious (because of 0, 2)")
    ada = mind(reflecting_model(answer))
    agent = new_agent(ada.name)
    for text in ("Ada built an engine", "Ada checked the numbers twice", "Ada asked why"):
        ada.stream.add(text, importance=5, created=NOW)
    before = len(ada.stream)
    ids = reflection.reflect(ada, agent, NOW)
    assert [ada.stream.get(i).text for i in ids] == ["Ada is precise", "Ada is curious"]
    assert len(ada.stream) == before + 2 and agent["counters"]["insights_dropped"] == 2
    deeper = mind(reflecting_model(f"1. Ada is a careful scientist (because of {ids[0]}, 0)"),
                  stream=ada.stream)
    again = reflection.reflect(deeper, agent, NOW)
    assert ada.stream.get(again[0]).depth == 2


def test_an_insight_citing_a_stored_memory_that_was_not_shown_is_dropped():
    shown: list[int] = []

    def respond(messages, tools):
        prompt = prompt_of(messages)
        if INSIGHTS_HEAD in prompt:
            shown[:] = shown_ids(prompt)
            hidden = min(set(range(30)) - set(shown))  # in the stream, never shown
            return (f"1. Ada is careful (because of {shown[0]})\n"
                    f"2. Ada is secretive (because of {shown[0]}, {hidden})")
        return reflecting_model("")(messages, tools)

    ada = mind(respond)
    agent = new_agent(ada.name)
    for i in range(30):
        ada.stream.add(f"Ada noted thing {i}", importance=5, created=NOW)
    ids = reflection.reflect(ada, agent, NOW)
    assert 0 < len(shown) < 30
    assert [ada.stream.get(i).text for i in ids] == ["Ada is careful"]
    assert agent["counters"]["insights_dropped"] == 1


@pytest.mark.parametrize(("insights", "questions"), [
    ("I cannot say anything about that.", "1. What matters?"),
    ("1. Ada loves engines (because of 42)", "1. What matters?"),
    ("1. Ada loves engines (because of 0)", "No questions come to mind."),
])
def test_unparseable_or_ungrounded_insights_insert_nothing(insights, questions):
    ada = mind(reflecting_model(insights, questions))
    agent = new_agent(ada.name)
    ada.stream.add("Ada built an engine", importance=5, created=NOW)
    assert reflection.reflect(ada, agent, NOW) == []
    assert len(ada.stream) == 1 and agent["counters"]["reflection_fallbacks"] == 1
    assert agent["reflected_through"] == 0  # the attempt still resets the sum


# -- importance ---------------------------------------------------------------------------

def test_importance_prose_is_retried_once_then_the_default_is_counted():
    asked = []

    def respond(messages, tools):
        asked.append(prompt_of(messages))
        return "These all seem fairly important to me, honestly."

    ada = mind(respond)
    agent = new_agent(ada.name)
    ids = remember(ada, agent, ["Ada met Charles", "Ada ate lunch"], now=NOW)
    assert len(asked) == 2
    assert [ada.stream.get(i).text for i in ids] == ["Ada met Charles", "Ada ate lunch"]
    assert all(ada.stream.get(i).importance == DEFAULT_IMPORTANCE for i in ids)
    assert agent["counters"] == {"importance_retries": 1, "importance_fallbacks": 2}


def test_importance_retry_asks_only_for_what_was_not_rated():
    asked = []

    def respond(messages, tools):
        asked.append(prompt_of(messages))
        return "1. 9\n2. eleven" if len(asked) == 1 else "1. 2"

    ada = mind(respond)
    agent = new_agent(ada.name)
    assert rate(ada, agent, ["a proposal", "a sandwich"]) == [9, 2]
    assert "a sandwich" in asked[1] and "a proposal" not in asked[1]
    assert agent["counters"].get("importance_fallbacks", 0) == 0


# -- planning -----------------------------------------------------------------------------

DAY_ANSWER = ("1. 00:00-07:00 sleeping @ home\n2. 07:00-08:00 breakfast\n"
              "3. 08:00-12:00 working @ lab\n4. 12:00-13:00 lunch\n"
              "5. 13:00-18:00 working @ lab\n6. 18:00-24:00 evening @ home")


def planner(day: str = DAY_ANSWER, retry_day: str | None = None):
    days = []

    def respond(messages, tools):
        prompt = prompt_of(messages)
        if prompt.startswith(DAY_PLAN_HEAD):
            days.append(prompt)
            return day if len(days) == 1 or retry_day is None else retry_day
        if prompt.startswith((HOUR_PLAN_HEAD, ACTIONS_HEAD)):
            span = prompt.split(": ", 1)[1].split()[0]
            start, end = (int(t[:2]) * 60 + int(t[3:]) for t in span.split("-"))
            size = 60 if prompt.startswith(HOUR_PLAN_HEAD) else 15
            cuts = [*range(start, end, size), end]
            return "\n".join(f"{i}. {a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d} part"
                             for i, (a, b) in enumerate(itertools.pairwise(cuts), 1))
        return ratings(3)(messages, tools)
    return respond, days


def covers(items, start, end) -> bool:
    return (items[0]["start"] == start and items[-1]["end"] == end and
            all(a["end"] == b["start"] for a, b in itertools.pairwise(items)) and
            sum(it["end"] - it["start"] for it in items) == end - start)


def test_plans_tile_the_day_the_stroke_and_the_block():
    respond, _ = planner()
    ada = mind(respond)
    agent = new_agent(ada.name)
    action = planning.current_action(ada, agent, datetime(2023, 2, 13, 9, 20), [])
    assert covers(agent["day_plan"], 0, DAY) and len(agent["day_plan"]) == 6
    assert covers(agent["hour_plan"], 480, 720) and len(agent["hour_plan"]) == 4
    assert covers(agent["actions"], 540, 600)
    assert all(5 <= a["end"] - a["start"] <= 15 for a in agent["actions"])
    assert action == item(555, 570, "part", "lab")  # areas inherited from the stroke
    assert [m.kind for m in ada.stream.memories()] == ["plan", "plan", "plan"]


def test_a_plan_that_does_not_tile_is_retried_then_repaired():
    gappy = "1. 01:00-07:00 sleeping\n2. 08:00-12:00 work\n3. 12:00-13:00 lunch\n" \
        "4. 13:00-18:00 work\n5. 18:00-23:00 evening"
    respond, days = planner(gappy)
    ada = mind(respond)
    agent = new_agent(ada.name)
    planning.current_action(ada, agent, datetime(2023, 2, 13, 9, 0), [])
    assert len(days) == 2 and "cannot be used" in days[1]
    assert covers(agent["day_plan"], 0, DAY) and agent["counters"]["plan_repairs"] == 1
    assert [it["text"] for it in agent["day_plan"]][:2] == ["sleeping", "work"]


def test_a_good_retry_is_used_and_prose_falls_back_to_one_stroke():
    respond, days = planner("1. 00:00-24:00 everything", DAY_ANSWER)
    ada = mind(respond)
    agent = new_agent(ada.name)
    planning.current_action(ada, agent, datetime(2023, 2, 13, 9, 0), [])
    assert len(days) == 2 and len(agent["day_plan"]) == 6
    assert "plan_repairs" not in agent["counters"]
    respond, _ = planner("I will see how I feel.")
    ada, agent = mind(respond), new_agent("Ada Lovelace")
    planning.current_action(ada, agent, datetime(2023, 2, 13, 9, 0), [])
    assert len(agent["day_plan"]) == 1 and covers(agent["day_plan"], 0, DAY)
    assert agent["counters"]["plan_fallbacks"] == 1


def test_replanning_keeps_the_past_and_the_day_still_sums():
    day = [item(0, 420, "sleep"), item(420, 480, "breakfast"), item(480, 720, "work"),
           item(720, 1440, "evening")]
    spliced = splice(day, 500, item(500, 530, "talk to Charles"))
    assert spliced[:2] == day[:2]  # the past, untouched
    assert spliced[2] == item(480, 500, "work") and spliced[3]["text"] == "talk to Charles"
    assert spliced[4] == item(530, 720, "work") and spliced[5] == day[3]
    assert covers(spliced, 0, DAY)
    long = splice(day, 700, item(700, 760, "a long talk"))
    assert covers(long, 0, DAY) and long[-1] == item(760, 1440, "evening")


# -- dialogue -----------------------------------------------------------------------------

def talker(end_after: int | None = None):
    said = []

    def respond(messages, tools):
        prompt = prompt_of(messages)
        if prompt.startswith(DIALOGUE_HEAD):
            said.append(prompt)
            return json.dumps({"utterance": f"line {len(said)}",
                               "end": end_after is not None and len(said) >= end_after})
        return ratings(4)(messages, tools)
    return respond, said


def two_minds(respond):
    minds = {name: mind(respond, name) for name in ("Ada Lovelace", "Charles Babbage")}
    minds["Ada Lovelace"].stream.add("Charles Babbage showed me his engine", importance=6,
                                     created=NOW)
    return minds, {name: new_agent(name) for name in minds}


def test_dialogue_is_bounded_stored_for_both_and_cools_down():
    respond, said = talker()
    minds, agents = two_minds(respond)
    turns = dialogue.converse(minds, agents, "Ada Lovelace", "Charles Babbage", NOW, step=3,
                              max_turns=4, cooldown=2)
    assert [who for who, _ in turns] == ["Ada Lovelace", "Charles Babbage"] * 2
    assert "Charles Babbage showed me his engine" in said[0]  # memories about the other
    for m in minds.values():
        lines = [x.text for x in m.stream.memories("dialogue")]
        assert lines[0] == 'Ada Lovelace said to Charles Babbage: "line 1"' and len(lines) == 4
    for step, allowed in ((3, False), (5, False), (6, True)):
        assert dialogue.can_talk(agents["Ada Lovelace"], "Charles Babbage", step) is allowed
        assert dialogue.can_talk(agents["Charles Babbage"], "Ada Lovelace", step) is allowed


def test_dialogue_ends_on_the_end_flag_and_prose_is_the_utterance():
    respond, _ = talker(end_after=3)
    minds, agents = two_minds(respond)
    turns = dialogue.converse(minds, agents, "Ada Lovelace", "Charles Babbage", NOW, step=0)
    assert len(turns) == 3
    minds, agents = two_minds(lambda messages, tools: "Lovely weather."
                              if prompt_of(messages).startswith(DIALOGUE_HEAD) else "1. 3")
    turns = dialogue.converse(minds, agents, "Ada Lovelace", "Charles Babbage", NOW, step=0,
                              max_turns=2)
    assert turns == [["Ada Lovelace", "Lovely weather."], ["Charles Babbage", "Lovely weather."]]
    assert agents["Ada Lovelace"]["counters"]["dialogue_fallbacks"] == 1


# -- the world step and runs --------------------------------------------------------------

def new_run(folder: Path, model=None, **settings) -> Simulation:
    return Simulation.create(PARTY, folder, model or TownsfolkSimChatModel(),
                             embeddings=fake_embeddings(), **settings)


def test_a_world_step_fans_out_to_every_agent(tmp_path):
    planned = []
    model = TownsfolkSimChatModel()

    def respond(messages, tools):
        prompt = prompt_of(messages)
        if prompt.startswith(DAY_PLAN_HEAD):
            planned.append(prompt.split(" for ")[0].removeprefix(DAY_PLAN_HEAD).strip())
        return model.invoke(messages).text

    with new_run(tmp_path / "run", RespondingChatModel(respond=respond)) as run:
        before = {name: len(m.stream) for name, m in run.minds.items()}
        entry = run.step()
        assert sorted(planned) == sorted(run.minds) == sorted(entry["agents"])
        assert all(len(m.stream) > before[name] for name, m in run.minds.items())
        assert run.world.step == 1 and run.agents["Maria Lopez"]["day"] == "2023-02-13"
        assert entry["agents"]["Maria Lopez"]["location"] == "Hobbs Cafe/seating area"


def snapshot(folder: Path) -> dict:
    db = sqlite3.connect(folder / RUN_DB)
    tables = {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
              for table in ("memory_stream", "generative_agents", "world_agents",
                            "world_clock", "world_objects", "world_step_log")}
    db.close()
    return {**tables, "log": (folder / STEP_LOG).read_text()}


def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path):
    with new_run(tmp_path / "whole") as run:
        run.run(9)
    with new_run(tmp_path / "parts") as run:
        run.run(4)
    with Simulation.open(tmp_path / "parts", TownsfolkSimChatModel(),
                         embeddings=fake_embeddings()) as run:
        assert run.world.step == 4
        run.run(5)
    whole, parts = snapshot(tmp_path / "whole"), snapshot(tmp_path / "parts")
    assert whole == parts
    assert len(whole["log"].splitlines()) == 9 and '"talked with' in whole["log"]


def test_a_step_that_fails_leaves_the_last_whole_step(tmp_path):
    with new_run(tmp_path / "run") as run:
        run.run(2)
    calls = []

    def breaks(messages, tools):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("server went away")
        return TownsfolkSimChatModel().invoke(messages).text

    with Simulation.open(tmp_path / "run", RespondingChatModel(respond=breaks),
                         embeddings=fake_embeddings()) as run, pytest.raises(RuntimeError):
        run.run(5)
    with Simulation.open(tmp_path / "run", embeddings=fake_embeddings()) as run:
        assert run.world.step == 2
        assert len((tmp_path / "run" / STEP_LOG).read_text().splitlines()) == 2


# -- the command line ---------------------------------------------------------------------

@pytest.fixture()
def cli(monkeypatch):
    from stepwise.cli import app, generative

    monkeypatch.setattr(generative, "EMBEDDINGS", fake_embeddings())
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_simulate_resume_interview_and_memory(cli, tmp_path):
    out = tmp_path / "run"
    first = cli("simulate", PARTY, "--steps", "3", "--out", out)
    assert first.exit_code == 0, first.output
    assert "step 1 08:10" in first.output and "talked with Maria Lopez" in first.output
    assert "simulated" in first.output
    again = cli("simulate", PARTY, "--steps", "2", "--out", out, "--resume")
    assert again.exit_code == 0, again.output
    assert "2 steps done (steps 3-4)" in again.output
    assert len((out / STEP_LOG).read_text().splitlines()) == 5
    asked = cli("interview", out, "Maria Lopez", "Is anyone planning a party?")
    assert asked.exit_code == 0, asked.output
    assert "party" in asked.output and "cited memories: " in asked.output
    cited = int(asked.output.split("cited memories: ")[1].split()[0].rstrip(","))
    shown = cli("memory", out, "Maria Lopez", "--query", "party", "--k", "3")
    assert shown.exit_code == 0, shown.output
    for column in ("recency", "importance", "relevance", "score"):
        assert column in shown.output
    assert shown.output.count("Maria Lopez") >= 1 and str(cited) in shown.output


@pytest.mark.parametrize(("args", "message"), [
    (("memory", "{run}", "Mario", "--query", "x"), "unknown agent 'Mario'"),
    (("interview", "{run}", "Mario", "hi"), "unknown agent 'Mario'"),
    (("memory", "{missing}", "Maria Lopez", "--query", "x"), "no run in"),
    (("interview", "{missing}", "Maria Lopez", "hi"), "no run in"),
    (("simulate", "{bad}", "--steps", "1", "--out", "{missing}"), "bad.json"),
    (("simulate", "{absent}", "--steps", "1", "--out", "{missing}"), "cannot read world file"),
    (("simulate", PARTY, "--steps", "1", "--out", "{run}"), "already holds a run"),
    (("simulate", PARTY, "--steps", "1", "--model", "sim:nowhere"), "unknown simulated world"),
])
def test_bad_input_is_one_clear_error(cli, tmp_path, args, message):
    run = tmp_path / "run"
    new_run(run).close()
    (tmp_path / "bad.json").write_text('{"name": "x", "clock": {}}')
    paths = {"run": run, "missing": tmp_path / "missing", "bad": tmp_path / "bad.json",
             "absent": tmp_path / "absent.json"}
    result = cli(*(str(a).format(**paths) for a in args))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing" / RUN_DB).exists()


def test_a_run_whose_seed_memories_fail_leaves_nothing_to_resume(tmp_path):
    def down(messages, tools):
        raise ConnectionError("model server down")

    with pytest.raises(ConnectionError):
        new_run(tmp_path / "run", RespondingChatModel(respond=down))
    assert not (tmp_path / "run" / RUN_DB).exists()
    new_run(tmp_path / "run").close()  # the same directory starts cleanly afterwards
