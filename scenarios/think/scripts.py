"""The hand-written answers behind the think scenarios' cassettes (they are scripted).

No model wrote these cassettes: each scenario's answers are written here and recorded
through the real agent, world and recorder, so the requests in a cassette are exactly
what the agent sends. Re-record after changing the agent's prompts or tools with

    python scenarios/think/scripts.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from stepwise.scenario.runner import record_file
from stepwise.testing.scripted import ScriptedChatModel, ai

HERE = Path(__file__).resolve().parent
SOURCE = "scripted: hand-written answers in scenarios/think/scripts.py"

SCRIPTS: dict[str, ScriptedChatModel] = {
    "think-changes-decision": ScriptedChatModel(
        answers=[
            ai("", ("get_reservation", {"reservation_id": "Z7K2M9"})),
            ai("", ("verify", {"request": "cancel_reservation(reservation_id='Z7K2M9') "
                                          "with a full refund"})),
            ai("I'm sorry, I can't cancel Z7K2M9: it was booked more than 24 hours ago and "
               "has no travel insurance, so our policy does not allow a cancellation."),
        ],
        plain_answers=[("NOT OK\nZ7K2M9 was booked on 2026-05-10, more than 24 hours before "
                        "now, and has no insurance: the policy forbids cancelling it.")],
    ),
    "think-budget-spent": ScriptedChatModel(answers=[
        ai("", ("think", {"thought": "Ava wants B9R4L7 moved from HAT010 to HAT011. I must "
                                     "check the cabin first: basic economy cannot change."})),
        ai("", ("think", {"thought": "Let me think once more about the fare difference."})),
        ai("", ("get_reservation", {"reservation_id": "B9R4L7"})),
        ai("", ("change_flight", {"reservation_id": "B9R4L7", "flight_numbers": ["HAT011"]})),
        ai("Done: B9R4L7 now flies HAT011 on 2026-05-19; the fare difference went on your card."),
    ]),
    "think-malformed-recovery": ScriptedChatModel(answers=[
        ai("", invalid=['{"reservation_id": "4WQ150"']),
        ai("", ("cancel_reservation", {"id": "4WQ150"})),
        ai("", ("cancel_reservation", {"reservation_id": "4WQ150"})),
        ai("Reservation 4WQ150 is cancelled; your insurance covers the refund."),
    ]),
    "think-pause-resume": ScriptedChatModel(answers=[
        ai("", ("get_reservation", {"reservation_id": "F6J1S3"})),
        ai("", ("ask_human", {"question": "Upgrading F6J1S3 to business changes the fare. "
                                          "Go ahead and charge the difference?"})),
        ai("", ("change_cabin", {"reservation_id": "F6J1S3", "cabin": "business"})),
        ai("F6J1S3 is now in business; the difference went on your credit card."),
    ]),
}


def main(names: list[str]) -> None:
    for name in names or sorted(SCRIPTS):
        outcome = record_file(str(HERE / f"{name}.yaml"), SCRIPTS[name], source=SOURCE)
        print(f"{name}: {'pass' if outcome.passed else 'FAIL'} {outcome.error or ''}")


if __name__ == "__main__":
    main(sys.argv[1:])
