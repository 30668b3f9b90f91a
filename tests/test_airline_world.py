"""The simulated airline: fresh databases, policy refusals that change nothing, gold actions,
the exact-state check, and the oracle model driving every task to success."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from stepwise.errors import StepwiseError
from stepwise.sim.airline import (
    AirlineTask,
    AirlineWorld,
    PolicyViolation,
    check_task,
    get_task,
    load_tasks,
    policy_text,
)
from stepwise.sim.airline.check import expected_state
from stepwise.sim.airline.db import load_db
from stepwise.sim.airline.oracle import NO_SCRIPT, AirlineOracleChatModel

TASKS = load_tasks()
FRESH = load_db().state()


def refuse(world: AirlineWorld, name: str, args: dict, match: str) -> None:
    """The call raises PolicyViolation matching ``match`` and leaves the state as it was."""
    before = world.state()
    with pytest.raises(PolicyViolation, match=match):
        world.apply(name, args)
    assert world.state() == before


def booking(**changes) -> dict:
    args = {"user_id": "ava_kowalski_1734", "flight_numbers": ["HAT006"], "cabin": "economy",
            "passengers": [{"first_name": "Ava", "last_name": "Kowalski", "dob": "1998-12-05"}],
            "payment_id": "credit_card_5547", "insurance": False}
    return {**args, **changes}


# The database


def test_each_load_is_a_fresh_copy():
    first = load_db()
    first.reservations["4WQ150"].status = "cancelled"
    first.users["mia_li_3668"].payment_methods["gift_card_7710"].balance = 0
    first.flights["HAT001"].available_seats["economy"] = 0
    assert load_db().state() == FRESH
    assert AirlineWorld().state() == FRESH


def test_state_is_plain_json():
    state = AirlineWorld().state()
    assert json.loads(json.dumps(state)) == state
    assert state["now"] == "2026-05-15T15:00:00"
    assert len(state["users"]) >= 8 and len(state["flights"]) >= 16
    assert len(state["reservations"]) >= 12


def test_policy_names_the_world_clock_and_the_rules():
    text = policy_text()
    assert AirlineWorld().policy == text
    for phrase in ("2026-05-15T15:00:00", "24 hours", "insurance", "Basic economy", "at most 5"):
        assert phrase in text


# The tools


def test_tools_raise_rather_than_answer_errors():
    world = AirlineWorld()
    tools = {t.name: t for t in world.tools()}
    assert set(tools) == {"get_user", "get_reservation", "search_flights", "book_reservation",
                          "cancel_reservation", "change_flight", "change_cabin",
                          "transfer_to_human"}
    assert all(t.handle_tool_error is False and t.description for t in tools.values())
    call = {"name": "get_user", "args": {"user_id": "nobody_0000"}, "id": "c1",
            "type": "tool_call"}
    with pytest.raises(PolicyViolation, match="No user"):
        tools["get_user"].invoke(call)


def test_reads_return_compact_json():
    world = AirlineWorld()
    user = json.loads(world.apply("get_user", {"user_id": "mia_li_3668"}))
    assert user["reservations"] == ["4WQ150", "Z7K2M9"]
    assert user["payment_methods"]["gift_card_7710"]["balance"] == 250
    found = json.loads(world.apply("search_flights", {"origin": "JFK", "destination": "ORD",
                                                      "date": "2026-05-18"}))
    assert [f["flight_number"] for f in found] == ["HAT001", "HAT002"]
    assert " " not in world.apply("get_reservation", {"reservation_id": "4WQ150"})[:40]
    assert "human agent" in world.apply("transfer_to_human", {"summary": "help"})
    assert world.state() == FRESH


def test_booking_ids_are_deterministic():
    first, second = AirlineWorld(), AirlineWorld()
    ids = [json.loads(w.apply("book_reservation", booking()))["reservation_id"]
           for w in (first, second)]
    assert ids[0] == ids[1] and ids[0] not in FRESH["reservations"]
    assert first.state() == second.state()
    again = json.loads(first.apply("book_reservation", booking()))["reservation_id"]
    assert again != ids[0]


def test_cancel_refunds_and_frees_seats():
    world = AirlineWorld()
    world.apply("cancel_reservation", {"reservation_id": "K8P3D1"})
    state = world.state()
    reservation = state["reservations"]["K8P3D1"]
    assert reservation["status"] == "cancelled"
    assert sum(p["amount"] for p in reservation["payment_history"]) == 0
    assert state["flights"]["HAT010"]["available_seats"]["economy"] == 22


def test_gift_card_balance_follows_charges_and_refunds():
    world = AirlineWorld()
    world.apply("book_reservation", booking(
        user_id="mia_li_3668", flight_numbers=["HAT008"], payment_id="gift_card_7710",
        passengers=[{"first_name": "Mia", "last_name": "Li", "dob": "1990-03-14"}]))
    (new_id,) = set(world.state()["reservations"]) - set(FRESH["reservations"])
    assert world.db.users["mia_li_3668"].payment_methods["gift_card_7710"].balance == 141
    world.apply("cancel_reservation", {"reservation_id": new_id})
    assert world.db.users["mia_li_3668"].payment_methods["gift_card_7710"].balance == 250


# Each policy rule refuses and changes nothing


def test_refuses_cancel_after_24h_without_insurance():
    refuse(AirlineWorld(), "cancel_reservation", {"reservation_id": "Z7K2M9"}, "24 hours")


def test_refuses_flight_change_for_basic_economy():
    refuse(AirlineWorld(), "change_flight",
           {"reservation_id": "T5N8Q2", "flight_numbers": ["HAT003"]}, "basic economy")


def test_refuses_more_than_five_passengers():
    six = [{"first_name": f"P{i}", "last_name": "Hassan", "dob": "2000-01-01"} for i in range(6)]
    refuse(AirlineWorld(), "book_reservation",
           booking(user_id="omar_hassan_5120", payment_id="credit_card_8834", passengers=six),
           "at most 5")


def test_refuses_another_users_payment_method():
    refuse(AirlineWorld(), "book_reservation", booking(payment_id="credit_card_4421"),
           "another user")


def test_refuses_gift_card_with_too_little_balance():
    refuse(AirlineWorld(), "book_reservation",
           booking(user_id="noah_patel_6059", payment_id="gift_card_4402"), "balance of \\$40")


def test_refuses_changing_a_cancelled_reservation():
    world = AirlineWorld()
    refuse(world, "change_flight", {"reservation_id": "C2H8W5", "flight_numbers": ["HAT001"]},
           "cancelled")
    refuse(world, "change_cabin", {"reservation_id": "C2H8W5", "cabin": "business"},
           "cancelled")
    refuse(world, "cancel_reservation", {"reservation_id": "C2H8W5"}, "already cancelled")


def test_refuses_a_flight_change_to_another_destination():
    refuse(AirlineWorld(), "change_flight",
           {"reservation_id": "P4D7G2", "flight_numbers": ["HAT012"]}, "BOS to MIA")


def test_refuses_unknown_names_and_broken_itineraries():
    world = AirlineWorld()
    refuse(world, "get_reservation", {"reservation_id": "NOPE00"}, "No reservation")
    refuse(world, "book_reservation", booking(flight_numbers=["HAT999"]), "No flight")
    refuse(world, "book_reservation", booking(payment_id="gift_card_0000"), "does not exist")
    refuse(world, "book_reservation", booking(flight_numbers=["HAT004", "HAT001"]),
           "leaves from")
    refuse(world, "book_reservation", booking(flight_numbers=["HAT002", "HAT004"]),
           "departs before")
    refuse(world, "book_reservation", booking(flight_numbers=["HAT008"], cabin="business"),
           "seats left")
    refuse(world, "apply_discount", {}, "no tool named")


def test_a_late_refusal_leaves_no_partial_write():
    # Seats and prices would change before the payment check if writes were not last.
    world = AirlineWorld()
    world.db.users["emma_johansson_8823"].payment_methods["credit_card_9013"].source = "gift_card"
    world.db.users["emma_johansson_8823"].payment_methods["credit_card_9013"].balance = 10
    refuse(world, "change_cabin", {"reservation_id": "F6J1S3", "cabin": "business"}, "balance")


# Tasks and the check


def test_tasks_cover_successes_and_refusals():
    ids = [task.id for task in TASKS]
    assert len(ids) == len(set(ids)) >= 14
    assert sum(task.policy_refusal for task in TASKS) >= 5
    assert len({task.request for task in TASKS}) == len(TASKS)
    for task in TASKS:
        assert task.user_id in task.request
        assert task.policy_refusal == (not task.actions), task.id


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.id)
def test_gold_actions_succeed_and_change_state_unless_refused(task: AirlineTask):
    state = expected_state(task)  # raises PolicyViolation if a gold action is refused
    assert (state == FRESH) is task.policy_refusal


def test_check_task_passes_the_gold_outcome_and_lists_differences():
    task = get_task("cancel-insured")
    world = AirlineWorld()
    assert not check_task(task, world).success  # nothing done yet
    world.apply("cancel_reservation", {"reservation_id": "4WQ150"})
    assert check_task(task, world).success and check_task(task, world).differences == []

    wrong = AirlineWorld()
    wrong.apply("cancel_reservation", {"reservation_id": "K8P3D1"})
    result = check_task(task, wrong)
    assert not result.success and result.task_id == "cancel-insured"
    assert "reservations.4WQ150.status: 'active' != expected 'cancelled'" in result.differences
    assert "reservations.K8P3D1.status: 'cancelled' != expected 'active'" in result.differences
    assert len(result.differences) <= 11


def test_check_task_caps_the_difference_list():
    world = AirlineWorld()
    for flight in world.db.flights.values():
        flight.available_seats["economy"] = 0
    differences = check_task(get_task("cancel-late-no-insurance"), world).differences
    assert len(differences) == 11 and differences[-1].startswith("... and ")


def test_get_task_unknown_id_names_the_known_ones():
    with pytest.raises(StepwiseError, match="unknown airline task 'nope'.*cancel-insured"):
        get_task("nope")


# The oracle model


@tool
def think(thought: str) -> str:
    """Think before acting; changes nothing."""
    return "ok"


def drive(task: AirlineTask, extra_tools=()) -> tuple[AirlineWorld, list]:
    world = AirlineWorld()
    model = AirlineOracleChatModel().bind_tools([*world.tools(), *extra_tools])
    messages: list = [SystemMessage(world.policy), HumanMessage(task.request)]
    for _ in range(10):
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return world, messages
        for call in reply.tool_calls:
            if call["name"] == "think":
                content = "ok"
            else:
                try:
                    content = world.apply(call["name"], call["args"])
                except PolicyViolation as error:
                    content = f"Error: {error}"
            messages.append(ToolMessage(content, tool_call_id=call["id"]))
    raise AssertionError(f"{task.id}: the oracle never answered")


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.id)
def test_oracle_completes_every_task(task: AirlineTask):
    world, messages = drive(task)
    result = check_task(task, world)
    assert result.success, result.differences
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert calls[0]["name"] == "get_user"
    assert [c["name"] for c in calls[1:]] == [a.name for a in task.actions]
    assert [c["id"] for c in calls] == [f"call_{i}" for i in range(len(calls))]
    final = messages[-1]
    assert final.text.startswith("(simulated oracle)")
    assert final.response_metadata["simulated"] is True
    assert final.usage_metadata["total_tokens"] > 0


def test_oracle_thinks_before_a_refusal_when_think_is_bound():
    task = get_task("change-basic-economy-flight")
    world, messages = drive(task, extra_tools=[think])
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert [c["name"] for c in calls] == ["get_user", "think"]
    thought = calls[1]["args"]["thought"]
    assert "basic economy" in thought
    assert check_task(task, world).success
    assert "can't" in messages[-1].text


def test_oracle_without_a_script_says_so():
    reply = AirlineOracleChatModel().invoke([HumanMessage("Book me a hotel in Rome.")])
    assert reply.text == NO_SCRIPT and not reply.tool_calls


def test_oracle_is_reachable_by_uri():
    from stepwise.llm import from_uri

    assert isinstance(from_uri("sim:airline-oracle"), AirlineOracleChatModel)
