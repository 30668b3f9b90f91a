"""The simulated sandbox world: WORLD.json loading and its one-line errors, perception
within a radius, moves, actions, the clock, and saving and resuming in a shared SQLite file."""

from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3

import pytest

from stepwise.sim.sandbox import (
    SandboxWorld,
    WorldError,
    WorldStore,
    WorldStoreError,
    bundled_world,
    format_step_log,
    load_world,
    parse_world_spec,
)


def town() -> dict:
    """A small world: a cafe with two rooms one unit apart, a park five units away."""
    return {
        "name": "test town",
        "clock": {"start": "2023-02-13T08:00:00", "minutes_per_step": 15},
        "areas": [
            {"name": "Cafe", "x": 0, "y": 0, "areas": [
                {"name": "counter", "objects": [{"name": "coffee machine", "state": "idle"}]},
                {"name": "kitchen", "x": 1, "y": 0, "objects": [
                    {"name": "stove", "state": "idle"}]},
            ]},
            {"name": "Park", "x": 3, "y": 4, "objects": [{"name": "bench", "state": "empty"}]},
        ],
        "agents": [
            {"name": "Ann Lee", "description": "Ann runs the cafe.", "location": "Cafe/counter",
             "action": "sitting at the counter", "object": "Cafe/counter/coffee machine",
             "memories": ["I run the cafe."]},
            {"name": "Bob Roy", "description": "Bob cooks.", "location": "Cafe/kitchen"},
            {"name": "Cy Tan", "description": "Cy walks.", "location": "Park",
             "action": "feeding the ducks"},
        ],
    }


def world() -> SandboxWorld:
    return SandboxWorld(parse_world_spec(town()))


# Loading


def test_bundled_party_world():
    party = bundled_world("party")
    assert set(party.agents) == {"Isabella Rodriguez", "Maria Lopez", "Klaus Mueller"}
    isabella = party.agents["Isabella Rodriguez"]
    assert isabella.location == "Hobbs Cafe/counter"
    assert any("Valentine" in memory and "February 14" in memory and "5pm" in memory
               for memory in isabella.memories)
    assert all(agent.memories and agent.description for agent in party.agents.values())
    assert {"Hobbs Cafe/counter", "Hobbs Cafe/kitchen", "Johnson Park"} <= \
        set(party.area_paths())
    assert party.object_state("Hobbs Cafe/kitchen/stove") == "idle"
    assert party.now == dt.datetime(2023, 2, 13, 8, 0)
    assert "simulated" in party.spec.description


def test_unknown_bundled_world_names_the_known_ones():
    with pytest.raises(WorldError, match="no bundled world 'nope' .*party"):
        bundled_world("nope")


def test_load_world_from_file(tmp_path):
    path = tmp_path / "WORLD.json"
    path.write_text(json.dumps(town()))
    loaded = load_world(path)
    assert list(loaded.agents) == ["Ann Lee", "Bob Roy", "Cy Tan"]
    assert loaded.area_paths() == ["Cafe", "Cafe/counter", "Cafe/kitchen", "Park"]
    assert loaded.agents["Ann Lee"].memories == ("I run the cafe.",)


def changed(edit) -> dict:
    data = copy.deepcopy(town())
    edit(data)
    return data


def _set(path, value):
    def edit(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


BAD_WORLDS = [
    ("unknown location", _set(("agents", 1, "location"), "Cafe/kitchn"),
     r"agent 'Bob Roy': location 'Cafe/kitchn' is not an area \(did you mean 'Cafe/kitchen'"),
    ("unknown home", _set(("agents", 2, "home"), "Mars"), r"agent 'Cy Tan': home 'Mars'"),
    ("object in an unknown area", _set(("agents", 0, "object"), "Cafe/bar/coffee machine"),
     (r"agent 'Ann Lee': object 'Cafe/bar/coffee machine' does not exist "
      r"\(there is no area 'Cafe/bar'\)")),
    ("unknown object", _set(("agents", 0, "object"), "Cafe/counter/kettle"),
     r"object 'Cafe/counter/kettle' does not exist \('Cafe/counter' has no such object\)"),
    ("object out of reach", _set(("agents", 0, "object"), "Cafe/kitchen/stove"),
     r"'Ann Lee' uses 'Cafe/kitchen/stove' but is in 'Cafe/counter'"),
    ("duplicate agent", lambda d: d["agents"].append(dict(d["agents"][2])),
     r"agent 'Cy Tan' is defined twice"),
    ("duplicate area", lambda d: d["areas"][0]["areas"].append({"name": "kitchen"}),
     r"area 'Cafe/kitchen' is defined twice"),
    ("duplicate object", lambda d: d["areas"][1]["objects"].append(
        {"name": "bench", "state": "wet"}), r"object 'Park/bench' is defined twice"),
    ("object named like a sub-area", _set(("areas", 0, "objects"),
                                          [{"name": "kitchen", "state": "x"}]),
     r"object 'Cafe/kitchen' has the name of a sub-area of 'Cafe'"),
    ("bad clock start", _set(("clock", "start"), "Feb 13, 8am"),
     r"clock\.start: 'Feb 13, 8am' is not an ISO 8601 date"),
    ("zero-minute steps", _set(("clock", "minutes_per_step"), 0),
     r"clock\.minutes_per_step: Input should be greater than 0"),
    ("no clock", lambda d: d.pop("clock"), r"clock: missing"),
    ("top-level area without position", lambda d: [d["areas"][1].pop(k) for k in "xy"],
     r"top-level area 'Park' needs a position"),
    ("half a position", lambda d: d["areas"][1].pop("y"), r"'Park' has only one of x and y"),
    ("unknown field", _set(("agents", 1, "mood"), "happy"),
     r"agents\['Bob Roy'\]\.mood: unknown field"),
    ("slash in a name", _set(("areas", 1, "objects", 0, "name"), "bench/seat"),
     r"areas\['Park'\]\.objects\['bench/seat'\]\.name: a name cannot contain '/'"),
    ("empty state", _set(("areas", 1, "objects", 0, "state"), " "),
     r"areas\['Park'\]\.objects\['bench'\]\.state: cannot be empty"),
]


@pytest.mark.parametrize(("edit", "message"), [case[1:] for case in BAD_WORLDS],
                         ids=[case[0] for case in BAD_WORLDS])
def test_bad_world_is_one_line_naming_the_item(tmp_path, edit, message):
    path = tmp_path / "WORLD.json"
    path.write_text(json.dumps(changed(edit)))
    with pytest.raises(WorldError, match=message) as caught:
        load_world(path)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", r"is not JSON: Expecting property name"),
    ("[1, 2]", r"top level must be a JSON object .* not list"),
    ('{"name": "a", "name": "b"}', r"the key 'name' appears twice"),
])
def test_unreadable_world_files(tmp_path, text, message):
    path = tmp_path / "WORLD.json"
    path.write_text(text)
    with pytest.raises(WorldError, match=message):
        load_world(path)


def test_missing_world_file(tmp_path):
    with pytest.raises(WorldError, match="cannot read world file .*absent.json"):
        load_world(tmp_path / "absent.json")


# Perception


def test_radius_zero_sees_only_the_own_area():
    seen = world().perceive("Ann Lee", radius=0)
    assert [(p.kind, p.subject, p.text) for p in seen] == [
        ("object", "Cafe/counter/coffee machine", "coffee machine is idle")]


def test_radius_reaches_neighbouring_areas_nearest_first():
    seen = world().perceive("Ann Lee", radius=1)
    assert [p.text for p in seen] == [
        "coffee machine is idle",
        "Bob Roy is in Cafe/kitchen",
        "stove is idle (in Cafe/kitchen)",
    ]
    assert [p.distance for p in seen] == [0.0, 1.0, 1.0]
    far = world().perceive("Ann Lee", radius=5)  # the park is exactly 5 away
    assert "Cy Tan is feeding the ducks (in Park)" in [p.text for p in far]
    assert "bench is empty (in Park)" in [p.text for p in far]
    assert all(p.subject != "Ann Lee" for p in far)


def test_sub_area_without_position_is_at_its_parents():
    spot = world()
    assert spot.position("Cafe/counter") == (0.0, 0.0)
    spot.move("Bob Roy", "Cafe")
    assert [p.text for p in spot.perceive("Ann Lee", radius=0)][:1] == [
        "Bob Roy is in Cafe"]


def test_agents_in_the_same_area_are_seen_whatever_the_radius():
    spot = world()
    spot.move("Bob Roy", "Cafe/counter")
    spot.set_action("Bob Roy", "drinking a latte")
    assert "Bob Roy is drinking a latte" in [p.text for p in spot.perceive("Ann Lee", 0)]
    assert "Ann Lee is sitting at the counter" in [p.text for p in spot.perceive("Bob Roy", 0)]


@pytest.mark.parametrize("radius", [-1, float("nan"), "far"])
def test_bad_radius(radius):
    with pytest.raises(WorldError, match="radius"):
        world().perceive("Ann Lee", radius)


def test_unknown_agent_is_suggested():
    with pytest.raises(WorldError, match=r"unknown agent 'Ann' \(did you mean 'Ann Lee'\?\)"):
        world().perceive("Ann")


# Changing the world


def test_move_validates_and_normalizes_the_path():
    spot = world()
    moved = spot.move("Cy Tan", " Cafe / kitchen/")
    assert moved.location == "Cafe/kitchen" == spot.agents["Cy Tan"].location
    with pytest.raises(WorldError, match=r"unknown area 'Cafe/kitchn' .*'Cafe/kitchen'"):
        spot.move("Cy Tan", "Cafe/kitchn")
    with pytest.raises(WorldError, match="'Cafe/kitchen/stove' is an object, not an area"):
        spot.move("Cy Tan", "Cafe/kitchen/stove")
    assert spot.agents["Cy Tan"].location == "Cafe/kitchen"


def test_moving_away_lets_go_of_the_object_but_keeps_the_action():
    spot = world()
    spot.move("Ann Lee", "Cafe/counter")
    assert spot.agents["Ann Lee"].object == "Cafe/counter/coffee machine"
    spot.move("Ann Lee", "Park")
    assert spot.agents["Ann Lee"].object is None
    assert spot.agents["Ann Lee"].action == "sitting at the counter"


def test_actions_and_objects():
    spot = world()
    spot.set_action("Bob Roy", "cooking breakfast", object="Cafe/kitchen/stove")
    spot.set_object_state("Cafe/kitchen/stove", "cooking breakfast")
    assert spot.agents["Bob Roy"].object == "Cafe/kitchen/stove"
    texts = [p.text for p in spot.perceive("Ann Lee", 1)]
    assert "Bob Roy is cooking breakfast (in Cafe/kitchen)" in texts
    assert "stove is cooking breakfast (in Cafe/kitchen)" in texts
    with pytest.raises(WorldError, match="cannot use 'Park/bench' from 'Cafe/kitchen'"):
        spot.set_action("Bob Roy", "resting", object="Park/bench")
    with pytest.raises(WorldError, match="'Cafe/kitchen' is an area, not an object"):
        spot.set_object_state("Cafe/kitchen", "clean")
    with pytest.raises(WorldError, match="must be non-empty text"):
        spot.set_object_state("Park/bench", "")
    spot.set_action("Bob Roy", "  ")
    assert spot.agents["Bob Roy"].action is None


def test_agents_cannot_be_changed_behind_the_worlds_back():
    spot = world()
    with pytest.raises(TypeError):
        spot.agents["Bob Roy"] = spot.agents["Ann Lee"]  # type: ignore[index]
    with pytest.raises(ValueError, match="frozen"):
        spot.agents["Bob Roy"].location = "Park"  # type: ignore[misc]


def test_clock_advances_by_the_step_length():
    spot = world()
    assert spot.now == dt.datetime(2023, 2, 13, 8, 0) and spot.step == 0
    assert spot.advance() == dt.datetime(2023, 2, 13, 8, 15)
    for _ in range(3):
        spot.advance()
    assert spot.step == 4 and spot.now == dt.datetime(2023, 2, 13, 9, 0)


def test_copy_is_independent():
    spot = world()
    twin = spot.copy()
    twin.move("Cy Tan", "Cafe/counter")
    twin.set_object_state("Park/bench", "wet")
    twin.advance()
    assert spot.agents["Cy Tan"].location == "Park" and spot.object_state("Park/bench") == "empty"
    assert spot.step == 0 and twin.step == 1


def test_describe_area():
    text = world().describe_area("Cafe")
    assert text.splitlines() == [
        "Area: Cafe",
        "Sub-areas: counter, kitchen",
        "Objects: none",
        "People: Ann Lee (counter): sitting at the counter; Bob Roy (kitchen)",
    ]
    assert "Objects: stove (idle)" in world().describe_area("Cafe/kitchen")
    assert "(part of Cafe)" in world().describe_area("Cafe/kitchen")


# Saving and resuming


def play(spot: SandboxWorld) -> None:
    spot.move("Cy Tan", "Cafe/counter")
    spot.set_action("Cy Tan", "ordering a coffee")
    spot.set_object_state("Cafe/counter/coffee machine", "brewing coffee")
    spot.advance()


def test_save_and_resume_in_a_file_shared_with_other_tables(tmp_path):
    path = tmp_path / "run.sqlite"
    shared = sqlite3.connect(path)
    shared.execute("CREATE TABLE memories (agent TEXT, text TEXT)")
    shared.execute("INSERT INTO memories VALUES ('Ann Lee', 'I run the cafe.')")
    shared.commit()
    spot = world()
    store = WorldStore(shared)
    store.save(spot)
    play(spot)
    store.save(spot, notes={"Cy Tan": "walked from the park to the cafe"})
    shared.close()

    with WorldStore(path) as reopened:
        resumed = reopened.load()
    assert resumed is not None
    assert resumed.state() == spot.state()
    assert resumed.now == dt.datetime(2023, 2, 13, 8, 15)
    assert resumed.agents["Cy Tan"].action == "ordering a coffee"
    assert resumed.object_state("Cafe/counter/coffee machine") == "brewing coffee"
    assert resumed.spec == spot.spec
    check = sqlite3.connect(path)
    assert check.execute("SELECT * FROM memories").fetchall() == [("Ann Lee", "I run the cafe.")]
    tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master "
                                                "WHERE type = 'table'")}
    assert tables - {"memories"} and all(t.startswith("world_") for t in tables - {"memories"})
    check.close()


def test_empty_file_has_no_world(tmp_path):
    with WorldStore(tmp_path / "new.sqlite") as store:
        assert store.load() is None
        assert store.step_log() == []


def test_a_failed_save_leaves_the_previous_step(tmp_path):
    path = tmp_path / "run.sqlite"
    spot = world()
    with WorldStore(path) as store:
        store.save(spot)
        play(spot)
        store.save(spot)
        saved = spot.state()
        db = sqlite3.connect(path)
        db.execute("CREATE TRIGGER fail BEFORE INSERT ON world_step_log WHEN NEW.step = 2 "
                   "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")
        db.commit()
        db.close()
        spot.move("Ann Lee", "Park")
        spot.advance()
        with pytest.raises(WorldStoreError, match="simulated failure"):
            store.save(spot)
        resumed = store.load()
        assert resumed is not None and resumed.state() == saved
        assert {entry.step for entry in store.step_log()} == {0, 1}


def test_a_save_inside_the_owners_transaction_rolls_back_with_it():
    shared = sqlite3.connect(":memory:")
    shared.execute("CREATE TABLE memories (text TEXT)")
    store = WorldStore(shared)
    shared.execute("INSERT INTO memories VALUES ('seen a stove')")  # opens a transaction
    store.save(world())
    assert shared.in_transaction
    shared.rollback()
    assert store.load() is None
    assert shared.execute("SELECT COUNT(*) FROM memories").fetchone() == (0,)
    store.save(world())
    shared.commit()
    assert store.load() is not None


def test_a_file_holds_one_world(tmp_path):
    with WorldStore(tmp_path / "run.sqlite") as store:
        store.save(world())
        with pytest.raises(WorldStoreError, match="holds another world .*'test town'"):
            store.save(bundled_world("party"))


def test_step_log_has_one_row_per_step_and_agent(tmp_path):
    spot = world()
    with WorldStore(tmp_path / "run.sqlite") as store:
        store.save(spot)
        play(spot)
        store.save(spot, notes={"Cy Tan": "went for coffee"})
        store.save(spot, notes={"Cy Tan": "went for a latte"})  # the same step again
        log = store.step_log()
        assert [(e.step, e.agent) for e in log] == [
            (0, "Ann Lee"), (0, "Bob Roy"), (0, "Cy Tan"),
            (1, "Ann Lee"), (1, "Bob Roy"), (1, "Cy Tan")]
        cy = store.step_log("Cy Tan")
        assert [(e.location, e.action, e.note) for e in cy] == [
            ("Park", "feeding the ducks", None),
            ("Cafe/counter", "ordering a coffee", "went for a latte")]
        assert cy[1].time == dt.datetime(2023, 2, 13, 8, 15)
        with pytest.raises(WorldError, match="unknown agent 'Dan'"):
            store.save(spot, notes={"Dan": "arrived"})
    text = format_step_log(spot.name, cy)
    assert text.splitlines()[0] == "Step log of the simulated sandbox world 'test town' " \
        "(a simulation)"
    assert text.splitlines()[2] == ("step 1 (2023-02-13 08:15) Cy Tan at Cafe/counter: "
                                    "ordering a coffee - went for a latte")


def test_a_damaged_world_file_is_reported(tmp_path):
    path = tmp_path / "run.sqlite"
    with WorldStore(path) as store:
        store.save(world())
    db = sqlite3.connect(path)
    db.execute("UPDATE world_agents SET location = 'Moon' WHERE name = 'Bob Roy'")
    db.commit()
    db.close()
    with WorldStore(path) as store, pytest.raises(WorldStoreError,
                                                  match="damaged: unknown area 'Moon'"):
        store.load()
