"""The paper's town-level measures of a run (Park et al. 2023, section 7), computed from
what the run saved, never scripted: they describe the simulation, not real people.

- diffusion of each event the world declares (a party, a candidacy): every agent is
  interviewed with the event's question and the answer judged by a keyword judge (correct
  when it holds every keyword, case ignored); the judge is stated with the figure;
- network density over conversations: one edge for each pair of agents who talked;
- attendance of an event with a place and a time: of the agents told of it in a
  conversation (an utterance to them that the judge accepts), the share whose location in
  the step log was in the place at a step within its time. The host is not counted.

Interviews leave the run as it was (an inspection, rolled back), and their requests are
reported apart from the run's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from stepwise.agents.generative.interview import interview
from stepwise.agents.generative.metrics import (
    conversation_edges,
    diffusion_report,
    keyword_judge,
    network_density,
)
from stepwise.sim.sandbox.spec import SEPARATOR, Event


def judge_statement(event: Event) -> str:
    words = ", ".join(repr(word) for word in event.keywords)
    return f"keyword judge: an answer is correct when it holds every one of {words}, case " \
        "ignored"


def told(entries: list[dict], event: Event) -> list[str]:
    """The agents someone told of ``event`` in a conversation (its host left out)."""
    judge = keyword_judge(list(event.keywords))
    heard = set()
    for entry in entries:
        for conversation in entry["conversations"]:
            for speaker, text in conversation["turns"]:
                if judge(text):
                    heard |= {who for who in conversation["pair"] if who != speaker}
    return sorted(heard - {event.host})


def attended(entries: list[dict], event: Event, agents: list[str]) -> list[str] | None:
    """Who of ``agents`` was in the event's place at a step within its time; None when the
    run has not reached its start."""
    assert event.place and event.start and event.end
    inside = event.place + SEPARATOR
    during = [entry for entry in entries
              if event.start <= dt.datetime.fromisoformat(entry["time"]) < event.end]
    if not during:
        return None
    return sorted(name for name in agents if any(
        entry["agents"].get(name, {}).get("location", "") in (event.place,)
        or entry["agents"].get(name, {}).get("location", "").startswith(inside)
        for entry in during))


def event_metrics(run: Any) -> list[dict]:
    """Diffusion (and attendance, where it has a place and time) of each of the world's
    events, from interviews now and the run's step log."""
    entries = run.step_lines()
    results = []
    for event in run.world.spec.events:
        with run.inspection():
            answers = {name: interview(mind, event.question, run.world.now).answer
                       for name, mind in sorted(run.minds.items())}
        report = diffusion_report(answers, list(event.keywords))
        result: dict[str, Any] = {
            "event": event.name, "host": event.host, "question": event.question,
            "judge": judge_statement(event), "diffusion": report.share,
            "knowers": list(report.knowers), "agents": len(report.agents),
        }
        if event.place and event.start and event.end:
            invited = told(entries, event)
            came = attended(entries, event, invited)
            result.update({
                "place": event.place, "start": event.start.isoformat(timespec="minutes"),
                "end": event.end.isoformat(timespec="minutes"), "invited": invited,
                "attended": came,
                "attendance": None if came is None or not invited else len(came) / len(invited),
            })
        results.append(result)
    return results


def town_metrics(run: Any) -> dict:
    """Everything the paper reports of a town run, as plain JSON values."""
    names = sorted(run.minds)
    edges = conversation_edges(run.conversations())
    if run.ledger is not None:
        run.ledger.discard()
    events = event_metrics(run)
    interviews = run.ledger.discard() if run.ledger is not None else None
    return {
        "simulated": True,
        "world": run.world.name,
        "steps": run.world.step,
        "time": run.world.spec.clock.stamp(run.world.now),
        "events": events,
        "interview_requests": interviews.requests if interviews else 0,
        "conversation_edges": len(edges),
        "density": network_density(names, edges),
        "density_note": "network density over conversation edges (who talked with whom)",
    }
