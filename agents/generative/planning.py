"""Planning, top-down as in the paper: the day in 5-8 broad strokes, the current stroke in
blocks of about an hour, the current block in 5-15 minute actions. Each level is planned
when the agent first needs it and is stored in memory as a ``plan``.

A plan must tile its span: items back to back, no gaps or overlaps, durations summing to
the day (or the stroke, or the block). An answer that does not is asked for again once,
with what was wrong; a second bad answer is repaired (sorted, clipped, each item running
to the next one's start: the sum holds, the model's own items stay) and counted as
``plan_repairs``; an answer with no readable item at all keeps doing the parent activity
for the whole span (``plan_fallbacks``).

Re-planning (``splice``) puts a reaction in at the current minute: what is past stays as
it was, the current item ends now, the reaction runs for its minutes, the rest of the day
follows as planned, trimmed where the reaction overlaps it. With the paper's mechanisms
the rest of the day is then planned again (``replan_rest``): the model sees the reaction,
what the agent remembers of it and the plan it had, and answers the hours left; an answer
that does not tile them is repaired, one with no readable item keeps the trimmed plan
(``replan_fallbacks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from stepwise.agents.generative.answers import clock_span, numbered_lines
from stepwise.agents.generative.importance import remember
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import (
    AREA_SEPARATOR,
    actions_prompt,
    clock,
    day_plan_prompt,
    hour_plan_prompt,
    replan_prompt,
)
from stepwise.agents.generative.state import AgentState, PlanItem, count

DAY = 24 * 60


@dataclass(frozen=True)
class Level:
    """What one level of the plan must look like."""

    name: str
    fewest: int = 1
    most: int = 96
    shortest: int = 1
    longest: int = DAY


DAY_LEVEL = Level("day plan", fewest=5, most=8)
REST_LEVEL = Level("rest of the day", fewest=1, most=8)
REPLAN_RETRIEVE = 10
HOUR_LEVEL = Level("hour plan", longest=120)
ACTION_LEVEL = Level("actions", shortest=5, longest=15)


def minute_of(now: datetime) -> int:
    return now.hour * 60 + now.minute


def item(start: int, end: int, text: str, area: str = "") -> PlanItem:
    return PlanItem(start=start, end=end, text=text, area=area)


def parse_items(answer: str) -> list[PlanItem]:
    """The ``HH:MM-HH:MM text @ area`` lines of a numbered answer, in answer order."""
    items = []
    for line in numbered_lines(answer):
        span = clock_span(line)
        if span is None:
            continue
        start, end, text = span
        text, _, area = text.partition(AREA_SEPARATOR)
        items.append(item(start, end, text.strip(), area.strip()))
    return items


def problem(items: Sequence[PlanItem], start: int, end: int, level: Level) -> str | None:
    """What keeps ``items`` from being a plan for [start, end) at ``level``; None if nothing."""
    if not level.fewest <= len(items) <= level.most:
        return f"it has {len(items)} items; give {level.fewest} to {level.most}"
    at = start
    for it in items:
        if it["start"] != at:
            return f"{clock(it['start'])} should be {clock(at)}: items must follow each other"
        minutes = it["end"] - it["start"]
        if not level.shortest <= minutes <= level.longest:
            return (f"{clock(it['start'])}-{clock(it['end'])} lasts {minutes} minutes; "
                    f"give {level.shortest} to {level.longest}")
        at = it["end"]
    if at != end:
        return f"it ends at {clock(at)}, not {clock(end)}"
    return None


def repair(items: Sequence[PlanItem], start: int, end: int) -> list[PlanItem]:
    """Items tiling [start, end): sorted, clipped, each running to the next one's start."""
    inside = sorted((it for it in items if start <= it["start"] < end), key=lambda it: it["start"])
    fixed: list[PlanItem] = []
    for i, it in enumerate(inside):
        begin = start if i == 0 else it["start"]
        finish = inside[i + 1]["start"] if i + 1 < len(inside) else end
        if finish > begin:
            fixed.append(item(begin, finish, it["text"], it["area"]))
    return fixed


def plan_span(mind: Mind, agent: AgentState, prompt: str, start: int, end: int, level: Level,
              parent: PlanItem) -> list[PlanItem]:
    """Ask for a plan of [start, end), check it, ask once more, then repair or fall back."""
    answer = mind.ask(prompt)
    items = parse_items(answer)
    wrong = problem(items, start, end, level)
    if wrong:
        count(agent, "plan_retries")
        retry = parse_items(mind.ask(f"{prompt}\n\nYour last answer cannot be used: {wrong}. "
                                     "Answer again in the format asked for."))
        items, wrong = (retry, problem(retry, start, end, level)) if retry else (items, wrong)
    if not wrong:
        return items
    fixed = repair(items, start, end)
    if fixed:
        count(agent, "plan_repairs")
        return fixed
    count(agent, "plan_fallbacks")
    return [item(start, end, parent["text"], parent["area"])]


def at(items: Sequence[PlanItem], minute: int) -> PlanItem | None:
    return next((it for it in items if it["start"] <= minute < it["end"]), None)


def describe(items: Sequence[PlanItem]) -> str:
    return "; ".join(f"{clock(it['start'])}-{clock(it['end'])} {it['text']}" for it in items)


def current_action(mind: Mind, agent: AgentState, now: datetime,
                   memories: Sequence[tuple[int, str]] | Callable[[], Sequence[tuple[int, str]]],
                   ) -> PlanItem:
    """The action for ``now``, planning the day, the stroke's blocks or the block's actions
    first where the plan does not reach ``now`` yet. ``memories`` (what the day plan is
    made from) may be a function, called only when the day is planned."""
    minute, day = minute_of(now), now.date().isoformat()
    header = mind.header(now)
    if agent["day"] != day or at(agent["day_plan"], minute) is None:
        yesterday = [f"{clock(it['start'])}-{clock(it['end'])} {it['text']}"
                     for it in agent["day_plan"]]
        whole = item(0, DAY, f"{mind.name}'s usual day")
        agent["day_plan"] = plan_span(
            mind, agent, day_plan_prompt(header, mind.name, now.strftime("%A %B %d"),
                                         memories() if callable(memories) else memories,
                                         yesterday), 0, DAY, DAY_LEVEL, whole)
        agent["day"], agent["hour_plan"], agent["actions"] = day, [], []
        summary = f"{mind.name}'s plan for {now.strftime('%A %B %d')}: {describe(agent['day_plan'])}"
        remember(mind, agent, [summary], now=now, kind="plan")
    stroke = at(agent["day_plan"], minute)
    if at(agent["hour_plan"], minute) is None:
        agent["hour_plan"] = decompose(
            mind, agent, stroke, HOUR_LEVEL, 60,
            hour_plan_prompt(header, mind.name, stroke["text"], stroke["start"], stroke["end"]),
            now)
        agent["actions"] = []
    block = at(agent["hour_plan"], minute)
    if at(agent["actions"], minute) is None:
        agent["actions"] = decompose(
            mind, agent, block, ACTION_LEVEL, 15,
            actions_prompt(header, mind.name, block["text"], block["start"], block["end"]), now)
    return at(agent["actions"], minute)


def decompose(mind: Mind, agent: AgentState, parent: PlanItem, level: Level, small: int,
              prompt: str, now: datetime) -> list[PlanItem]:
    """``parent`` in ``level`` items; spans no longer than ``small`` minutes stay whole."""
    if parent["end"] - parent["start"] <= small:
        return [dict(parent)]  # type: ignore[list-item]
    items = plan_span(mind, agent, prompt, parent["start"], parent["end"], level, parent)
    for it in items:
        it["area"] = it["area"] or parent["area"]
    remember(mind, agent, [f"{mind.name} plans {describe(items)}"], now=now, kind="plan")
    return items


def splice(items: Sequence[PlanItem], minute: int, reaction: PlanItem) -> list[PlanItem]:
    """``items`` with ``reaction`` in from ``minute``: the past kept, the rest trimmed."""
    end = reaction["end"]
    spliced: list[PlanItem] = []
    for it in items:
        if it["end"] <= minute:
            spliced.append(dict(it))  # type: ignore[arg-type]
        elif it["start"] < minute:
            spliced.append(item(it["start"], minute, it["text"], it["area"]))
    spliced.append(dict(reaction))  # type: ignore[arg-type]
    for it in items:
        if it["end"] > end and it["end"] > minute:
            spliced.append(item(max(it["start"], end), it["end"], it["text"], it["area"]))
    return spliced


def replan(agent: AgentState, now: datetime, text: str, minutes: int, area: str = "") -> PlanItem:
    """Put a reaction of ``minutes`` into every level of the plan from now (not past midnight)."""
    minute = minute_of(now)
    reaction = item(minute, min(DAY, minute + minutes), text, area)
    agent["day_plan"] = splice(agent["day_plan"], minute, reaction)
    agent["hour_plan"] = [dict(reaction)]  # type: ignore[list-item]
    agent["actions"] = [dict(reaction)]  # type: ignore[list-item]
    count(agent, "replans")
    return reaction


def replan_rest(mind: Mind, agent: AgentState, now: datetime, reaction: PlanItem) -> None:
    """Plan the day again from the end of ``reaction`` (already spliced in) to midnight."""
    start = reaction["end"]
    if start >= DAY:
        return
    kept = [it for it in agent["day_plan"] if it["end"] <= start]
    before = [f"{clock(it['start'])}-{clock(it['end'])} {it['text']}"
              + (f"{AREA_SEPARATOR}{it['area']}" if it["area"] else "")
              for it in agent["day_plan"] if it["start"] >= start]
    found = mind.stream.retrieve(reaction["text"], k=REPLAN_RETRIEVE, now=now)
    prompt = replan_prompt(mind.header(now), mind.name, reaction["text"], reaction["start"],
                           start, before, mind.memory_pairs(found))
    items = parse_items(mind.ask(prompt))
    if problem(items, start, DAY, REST_LEVEL) is not None:
        items = repair(items, start, DAY)
        if not items:
            count(agent, "replan_fallbacks")
            return
        count(agent, "plan_repairs")
    agent["day_plan"] = kept + items
    count(agent, "rest_replans")
    remember(mind, agent, [f"{mind.name} re-plans the rest of the day: {describe(items)}"],
             now=now, kind="plan")
