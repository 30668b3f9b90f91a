"""The bundled 25-agent Smallville town (a simulation) and the world-file mistakes it made
possible: streets that leave an area unreachable, relationships and events naming nobody,
duplicate agents and objects in two places, each one ``error:`` line naming the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepwise.sim.sandbox import WorldError, bundled_world, read_world_spec

SMALLVILLE = Path(__file__).resolve().parent.parent / "stepwise" / "sim" / "sandbox" / \
    "data" / "smallville.json"
runner = CliRunner()


def smallville() -> dict:
    return json.loads(SMALLVILLE.read_text("utf-8"))


def test_smallville_has_25_agents_the_places_of_the_paper_and_two_pieces_of_news():
    town = bundled_world("smallville")
    assert len(town.agents) == 25
    tops = town.sub_areas()
    for place in ("Hobbs Cafe", "Oak Hill College", "The Rose and Crown Pub", "Johnson Park",
                  "Harvey Oak Supply Store", "Willows Market and Pharmacy"):
        assert place in tops
    assert sum("house" in top or "apartment" in top.lower() for top in tops) >= 6
    assert town.object_state("Hobbs Cafe/kitchen/stove") == "idle"
    assert all(agent.home and agent.relationships for agent in town.agents.values())
    party, candidacy = town.spec.events
    assert (party.host, party.place, party.start.hour) == ("Isabella Rodriguez", "Hobbs Cafe", 17)
    assert candidacy.host == "Sam Moore" and candidacy.place is None
    for name, agent in town.agents.items():  # only the hosts know their news at the start
        for event in town.spec.events:
            knows = any(all(w.lower() in m.lower() for w in event.keywords)
                        for m in agent.seed_memories)
            assert knows == (name == event.host), (name, event.name)
    assert "simulated" in town.spec.description and "fictional" in town.spec.description


def test_the_area_tree_is_walked_one_level_at_a_time():
    town = bundled_world("smallville")
    assert town.sub_areas("Hobbs Cafe") == ["Hobbs Cafe/counter", "Hobbs Cafe/kitchen",
                                            "Hobbs Cafe/seating area"]
    assert town.sub_areas("Hobbs Cafe/kitchen") == []
    assert town.objects_in("Hobbs Cafe/kitchen") == ["Hobbs Cafe/kitchen/stove",
                                                     "Hobbs Cafe/kitchen/refrigerator"]
    assert town.objects_in("Hobbs Cafe") == []


def edited(tmp_path: Path, edit) -> Path:
    data = copy.deepcopy(smallville())
    edit(data)
    path = tmp_path / "WORLD.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def cut_off_the_park(data: dict) -> None:
    data["streets"] = [s for s in data["streets"] if "Johnson Park" not in s]


def relate_to_nobody(data: dict) -> None:
    data["agents"][3]["relationships"].append({"agent": "Sam Mooore", "text": "A friend."})


def duplicate_an_agent(data: dict) -> None:
    data["agents"].append(copy.deepcopy(data["agents"][5]))


def put_an_object_in_two_places(data: dict) -> None:
    maria = data["agents"][1]
    maria["object"] = "Oak Hill College dorm/Klaus Mueller's room/desk"


def define_an_object_twice(data: dict) -> None:
    data["areas"][0]["areas"][1]["objects"].append({"name": "stove", "state": "hot"})


BAD = [
    ("unreachable area", cut_off_the_park,
     "area 'Johnson Park' is unreachable: no street leads to it from 'Hobbs Cafe'"),
    ("street to nowhere", lambda d: d["streets"].append(["Hobbs Cafe", "Mars"]),
     "street ('Hobbs Cafe', 'Mars'): 'Mars' is not a top-level area"),
    ("relationship with an unknown agent", relate_to_nobody,
     ("agent 'Sam Moore': relationship with 'Sam Mooore', who is not an agent of this world "
     "(did you mean 'Sam Moore'?)")),
    ("duplicate agent", duplicate_an_agent, "agent 'John Lin' is defined twice"),
    ("object in two places", put_an_object_in_two_places,
     ("agent 'Maria Lopez' uses \"Oak Hill College dorm/Klaus Mueller's room/desk\" but is "
     "in \"Oak Hill College dorm/Maria Lopez's room\"")),
    ("object defined twice", define_an_object_twice,
     "object 'Hobbs Cafe/kitchen/stove' is defined twice"),
    ("event hosted by nobody", lambda d: d["events"][1].update(host="Sam"),
     "event 'mayoral candidacy': host 'Sam' is not an agent of this world"),
    ("event in no place", lambda d: d["events"][0].update(place="Hobbs Café"),
     ("event \"Valentine's Day party\": place 'Hobbs Café' is not an area (did you mean "
     "'Hobbs Cafe'?)")),
    ("event ending first", lambda d: d["events"][0].update(end="2023-02-14T16:00:00"),
     "event \"Valentine's Day party\" ends before it starts"),
]


@pytest.mark.parametrize(("edit", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_town_is_one_line_naming_the_file_and_the_problem(tmp_path, edit, message):
    path = edited(tmp_path, edit)
    with pytest.raises(WorldError) as refused:
        read_world_spec(path)
    assert str(refused.value) == f"{path}: {message}"


@pytest.mark.parametrize(("edit", "message"), [BAD[0][1:], BAD[2][1:]], ids=["streets", "rel"])
def test_simulate_prints_the_one_error_line_before_any_run_exists(tmp_path, edit, message):
    from stepwise.cli import app

    path = edited(tmp_path, edit)
    result = runner.invoke(app, ["simulate", str(path), "--steps", "1",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert f"error: {path}: {message}" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_an_unknown_town_name_lists_the_bundled_ones(tmp_path):
    from stepwise.cli import app

    result = runner.invoke(app, ["simulate", "smalville", "--steps", "1",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "no world file 'smalville'" in result.output
    assert "bundled: party, smallville" in result.output
