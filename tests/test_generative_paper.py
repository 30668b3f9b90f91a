"""The paper's mechanisms (issue 18 item 2): the area-tree walk, object states, the agent
summary description, relationship summaries before dialogue and re-planning the rest of a
day; and runs made before them resuming unchanged. Models are scripted or sim:townsfolk;
memory streams use hashed embeddings."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage

from stepwise.agents.generative import dialogue, locating, planning, summary
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import (
    IMPORTANCE_HEAD,
    OBJECT_HEAD,
    RELATION_HEAD,
    REPLAN_HEAD,
    STATE_HEAD,
    SUMMARY_HEAD,
    WALK_HEAD,
)
from stepwise.agents.generative.simulation import RunSettings, Simulation
from stepwise.agents.generative.state import new_agent
from stepwise.agents.generative.step import Town, apply_located
from stepwise.agents.generative.townsfolk import TownsfolkSimChatModel
from stepwise.memory.stream import MemoryStream
from stepwise.sim.sandbox import bundled_world
from stepwise.testing.responding import RespondingChatModel

DATA = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / "data"
NOW = datetime(2023, 2, 14, 12, 0)


def prompt_of(messages) -> str:
    return next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))


def rated(prompt: str) -> str:
    items = [line for line in prompt.splitlines() if line[:1].isdigit()]
    return "\n".join(f"{i}. 3" for i in range(1, len(items) + 1))


def scripted(answers: dict[str, str], asked: list[str] | None = None):
    """A model answering each prompt by its head; importance prompts rate everything 3."""
    def respond(messages, tools):
        prompt = prompt_of(messages)
        if asked is not None:
            asked.append(prompt)
        if prompt.startswith(IMPORTANCE_HEAD):
            return rated(prompt)
        return next((text for head, text in answers.items() if prompt.startswith(head)), "?")
    return RespondingChatModel(respond=respond)


def mind_in(world, name: str, model) -> Mind:
    stream = MemoryStream(DeterministicFakeEmbedding(size=16), clock=lambda: NOW)
    spec = world.agents[name]
    return Mind(name, spec.description, model, stream, tuple(world.sub_areas()),
                home=spec.home or "")


# -- the area-tree walk and object states ---------------------------------------------------

def test_a_plan_line_naming_a_building_walks_down_to_a_room_an_object_and_its_state():
    town, asked = bundled_world("smallville"), []
    model = scripted({WALK_HEAD: "kitchen", OBJECT_HEAD: "stove", STATE_HEAD: "cooking"}, asked)
    isabella = mind_in(town, "Isabella Rodriguez", model)
    agent = new_agent(isabella.name)
    place = locating.locate(isabella, agent, town, planning.item(720, 780, "cooking lunch",
                                                                  "Hobbs Cafe"), NOW)
    assert (place["area"], place["object"], place["state"]) == (
        "Hobbs Cafe/kitchen", "Hobbs Cafe/kitchen/stove", "cooking")
    walk = next(p for p in asked if p.startswith(WALK_HEAD))
    assert "counter; kitchen; seating area" in walk
    assert [p.split()[0] for p in asked] == ["Where", "Which", "What"]
    again = locating.locate(isabella, agent, town, planning.item(780, 795, "cooking lunch",
                                                                  "Hobbs Cafe"), NOW)
    assert again == place and len(asked) == 3  # the same activity asks nothing more
    assert "unknown_places" not in agent["counters"]


def test_a_place_that_does_not_exist_falls_back_to_the_walk_from_the_top_and_is_counted():
    town, asked = bundled_world("smallville"), []
    model = scripted({WALK_HEAD: "Johnson Park", OBJECT_HEAD: "none"}, asked)
    maria = mind_in(town, "Maria Lopez", model)
    agent = new_agent(maria.name)
    place = locating.locate(maria, agent, town, planning.item(600, 660, "feeding the ducks",
                                                               "the duck pond"), NOW)
    assert agent["counters"]["unknown_places"] == 1
    assert "Choose one area of the town: Hobbs Cafe;" in asked[0]
    assert place["area"].startswith("Johnson Park/") and place["object"] == ""


def test_a_walk_answer_naming_no_option_keeps_to_where_the_agent_is_and_is_counted():
    town = bundled_world("smallville")
    model = scripted({WALK_HEAD: "somewhere nice", OBJECT_HEAD: "the moon"})
    klaus = mind_in(town, "Klaus Mueller", model)
    agent = new_agent(klaus.name)
    place = locating.locate(klaus, agent, town, planning.item(600, 660, "reading",
                                                               "Oak Hill College dorm"), NOW)
    assert place["area"] == "Oak Hill College dorm/Klaus Mueller's room"  # where he is
    assert agent["counters"]["walk_fallbacks"] == 1
    assert agent["counters"]["object_fallbacks"] == 1 and place["object"] == ""


def test_objects_take_the_state_of_the_action_and_return_to_it_when_let_go():
    town = bundled_world("smallville")
    model = scripted({WALK_HEAD: "kitchen", OBJECT_HEAD: "stove", STATE_HEAD: "cooking"})
    minds = {name: mind_in(town, name, model) for name in town.agents}
    agents = {name: new_agent(name) for name in town.agents}
    for state in agents.values():
        state["actions"] = [planning.item(360, 370, "sleeping", "")]
    agents["Isabella Rodriguez"]["actions"] = [planning.item(360, 370, "cooking breakfast",
                                                             "Hobbs Cafe")]
    apply_located(Town(town, minds, 2.0, paper=True), agents, 360)
    assert town.object_state("Hobbs Cafe/kitchen/stove") == "cooking"
    assert town.agent("Isabella Rodriguez").object == "Hobbs Cafe/kitchen/stove"
    agents["Isabella Rodriguez"]["actions"] = [planning.item(370, 380, "going home",
                                                             "Isabella Rodriguez's apartment")]
    model.respond = scripted({WALK_HEAD: "bedroom", OBJECT_HEAD: "none"}).respond
    apply_located(Town(town, minds, 2.0, paper=True), agents, 370)
    assert town.agent("Isabella Rodriguez").location == "Isabella Rodriguez's apartment/bedroom"
    assert town.object_state("Hobbs Cafe/kitchen/stove") == "idle"


# -- summaries ------------------------------------------------------------------------------

def test_the_summary_description_is_made_once_a_day_and_heads_every_prompt():
    town, asked = bundled_world("smallville"), []
    model = scripted({SUMMARY_HEAD: "Sam is a retired officer running for mayor."}, asked)
    sam = mind_in(town, "Sam Moore", model)
    agent = new_agent(sam.name)
    assert summary.due(agent, NOW)
    summary.refresh(sam, agent, NOW)
    assert not summary.due(agent, NOW) and summary.due(agent, datetime(2023, 2, 15, 6, 0))
    assert agent["summary"] == "Sam is a retired officer running for mayor."
    header = sam.header(NOW)
    assert header.startswith("Sam Moore: Sam is a retired officer running for mayor.\n")
    assert "\nHome: Moore family's house/bedroom." in header
    assert "Seed identity: Sam Moore is a retired navy officer" in asked[0]


def test_an_empty_summary_keeps_the_seed_description_and_is_counted():
    town = bundled_world("smallville")
    sam = mind_in(town, "Sam Moore", scripted({SUMMARY_HEAD: "   "}))
    agent = new_agent(sam.name)
    summary.refresh(sam, agent, NOW)
    assert agent["summary"] == town.agents["Sam Moore"].description
    assert agent["counters"]["summary_fallbacks"] == 1


def test_each_speaker_sums_up_the_relationship_once_and_every_turn_carries_it():
    town, asked = bundled_world("smallville"), []
    model = scripted({RELATION_HEAD: "They are old neighbours.",
                      "Conversation between": '{"utterance": "Hello.", "end": false}'}, asked)
    minds = {n: mind_in(town, n, model) for n in ("Sam Moore", "John Lin")}
    agents = {n: new_agent(n) for n in minds}
    turns = dialogue.converse(minds, agents, "Sam Moore", "John Lin", NOW, 0, max_turns=4,
                              relationships=True)
    assert len(turns) == 4
    assert sum(p.startswith(RELATION_HEAD) for p in asked) == 2
    talks = [p for p in asked if p.startswith("Conversation between")]
    assert len(talks) == 4
    assert all("Sam Moore and John Lin: They are old neighbours." in p for p in talks[::2])
    assert all("John Lin and Sam Moore: They are old neighbours." in p for p in talks[1::2])


# -- re-planning the rest of the day --------------------------------------------------------

DAY = [planning.item(0, 420, "sleeping"), planning.item(420, 720, "working"),
       planning.item(720, 780, "lunch"), planning.item(780, 1440, "working late")]


def tiles(items) -> bool:
    return items[0]["start"] == 0 and items[-1]["end"] == 1440 and all(
        a["end"] == b["start"] for a, b in itertools.pairwise(items))


def test_after_a_reaction_the_rest_of_the_day_is_planned_again_not_trimmed():
    town, asked = bundled_world("smallville"), []
    model = scripted({REPLAN_HEAD: "1. 10:30-17:00 helping Isabella decorate @ Hobbs Cafe\n"
                                   "2. 17:00-19:00 going to the party @ Hobbs Cafe\n"
                                   "3. 19:00-24:00 sleeping"}, asked)
    tom = mind_in(town, "Tom Moreno", model)
    agent = new_agent(tom.name)
    agent["day_plan"] = [dict(it) for it in DAY]
    now = datetime(2023, 2, 14, 10, 0)
    reaction = planning.replan(agent, now, "talking with Isabella", 30)
    planning.replan_rest(tom, agent, now, reaction)
    texts = [it["text"] for it in agent["day_plan"]]
    assert texts == ["sleeping", "working", "talking with Isabella",
                     "helping Isabella decorate", "going to the party", "sleeping"]
    assert tiles(agent["day_plan"]) and agent["counters"]["rest_replans"] == 1
    replan = next(p for p in asked if p.startswith(REPLAN_HEAD))
    assert "- 10:30-12:00 working" in replan and "cover 10:30 to 24:00" in replan


def test_an_unreadable_re_plan_keeps_the_trimmed_day_and_is_counted():
    town = bundled_world("smallville")
    tom = mind_in(town, "Tom Moreno", scripted({REPLAN_HEAD: "I'll play it by ear."}))
    agent = new_agent(tom.name)
    agent["day_plan"] = [dict(it) for it in DAY]
    now = datetime(2023, 2, 14, 10, 0)
    reaction = planning.replan(agent, now, "talking with Isabella", 30)
    trimmed = [dict(it) for it in agent["day_plan"]]
    planning.replan_rest(tom, agent, now, reaction)
    assert agent["day_plan"] == trimmed and agent["counters"]["replan_fallbacks"] == 1


# -- runs -----------------------------------------------------------------------------------

def test_a_run_saved_before_the_mechanisms_existed_resumes_without_them():
    old = RunSettings.stored('{"world": "party.json", "radius": 2.0, "max_turns": 6, '
                             '"cooldown": 6, "threshold": 150, "preset": "paper"}')
    assert old.mechanisms == "basic"
    assert RunSettings(world="party.json").mechanisms == "paper"


def test_the_25_agent_town_walks_sets_object_states_and_resumes_the_same(tmp_path):
    def run(folder: Path, parts: list[int]) -> str:
        embeddings = DeterministicFakeEmbedding(size=16)
        with Simulation.create(DATA / "smallville.json", folder, TownsfolkSimChatModel(),
                               embeddings=embeddings, radius=1.0) as first:
            first.run(parts[0])
        for steps in parts[1:]:
            with Simulation.open(folder, TownsfolkSimChatModel(), embeddings=embeddings) as more:
                more.run(steps)
        return (folder / "steps.jsonl").read_text()

    whole = run(tmp_path / "whole", [3])
    assert run(tmp_path / "parts", [2, 1]) == whole
    with Simulation.inspect(tmp_path / "whole") as done:
        counters = {k: sum(a["counters"].get(k, 0) for a in done.agents.values())
                    for k in ("walks", "summaries", "unknown_places")}
        changed = {p for p, s in done.world.objects.items() if s != done.world.initial_state(p)}
        assert counters["summaries"] == 25 and counters["walks"] >= 25
        assert counters["unknown_places"] == 0
        assert changed  # e.g. the coffee machine brewing, a bed occupied
        assert all(a.get("summary") for a in done.agents.values())
