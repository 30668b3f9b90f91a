"""The generative agent's prompts, after Park et al. 2023, and the answer format each asks for.

Each prompt opens with a fixed head (``IMPORTANCE_HEAD`` ...) so that logs, cassettes and the
simulated townsfolk model can tell the kinds of request apart. Formats:

- importance: numbered lines ``i. <integer 1-10>``, one per numbered memory;
- questions, insights, plans: numbered lines; an insight ends with ``(because of 12, 40)``
  citing memory ids as the prompt shows them (``[12]``); a plan item is
  ``HH:MM-HH:MM activity @ area`` (the ``@ area`` part optional);
- reaction, dialogue turn, interview: one JSON object with the keys the prompt names;
- the paper's further prompts (``mechanisms="paper"``): the agent summary description and
  a relationship summary are a sentence or two of prose; a step of the area-tree walk and
  the object used name one of the options given; an object's state is a short phrase.

Memories are always shown oldest first with their stream id, so that which memories are
retrieved matters to a prompt, not the order in which near-equal scores came out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

IMPORTANCE_HEAD = "On the scale of 1 to 10"
QUESTIONS_HEAD = "Given only the statements above, what are the 3 most salient"
INSIGHTS_HEAD = "What 5 high-level insights"
DAY_PLAN_HEAD = "Plan the day of"
HOUR_PLAN_HEAD = "Break this part of the day of"
ACTIONS_HEAD = "Break this hour of"
REACT_HEAD = "Should"
DIALOGUE_HEAD = "Conversation between"
INTERVIEW_HEAD = "Interview with"
SUMMARY_HEAD = "Describe"
WALK_HEAD = "Where should"
OBJECT_HEAD = "Which object"
STATE_HEAD = "What is the state of"
RELATION_HEAD = "What is the relationship"
REPLAN_HEAD = "Re-plan the rest of the day of"
NO_OBJECT = "none"

AREA_SEPARATOR = " @ "


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def memory_lines(memories: Iterable[tuple[int, str]]) -> str:
    """``[id] text`` lines, oldest (smallest id) first."""
    return "\n".join(f"[{mid}] {text}" for mid, text in sorted(memories))


def importance_prompt(name: str, texts: Sequence[str]) -> str:
    items = "\n".join(f"{i}. {text}" for i, text in enumerate(texts, 1))
    return (
        f"{IMPORTANCE_HEAD}, where 1 is purely mundane (e.g., brushing teeth, making bed) "
        "and 10 is extremely poignant (e.g., a break up, college acceptance), rate the likely "
        f"poignancy of each of {name}'s memories below.\n\n{items}\n\n"
        f"Answer with exactly {len(texts)} numbered lines, line i holding only the integer "
        "rating of memory i.")


def questions_prompt(memories: Iterable[tuple[int, str]]) -> str:
    return (f"{memory_lines(memories)}\n\n{QUESTIONS_HEAD} high-level questions we can answer "
            "about the subjects in the statements? Answer with 3 numbered lines.")


def insights_prompt(name: str, memories: Iterable[tuple[int, str]]) -> str:
    return (
        f"Statements about {name}:\n{memory_lines(memories)}\n\n"
        f"{INSIGHTS_HEAD} can you infer from the above statements? Answer with 5 numbered "
        "lines, each ending with the ids of the statements it rests on, e.g. "
        "'1. insight (because of 12, 40)'. Cite only ids shown above.")


def agent_header(name: str, description: str, now: str) -> str:
    return f"{name}: {description}\nIt is {now}."


def day_plan_prompt(header: str, name: str, day: str, memories: Iterable[tuple[int, str]],
                    yesterday: Sequence[str]) -> str:
    before = "\n".join(f"- {item}" for item in yesterday) or "- nothing recorded"
    return (
        f"{DAY_PLAN_HEAD} {name} for {day} in 5 to 8 broad strokes.\n{header}\n\n"
        f"What {name} remembers:\n{memory_lines(memories)}\n\nYesterday's plan:\n{before}\n\n"
        "Answer with 5 to 8 numbered lines 'HH:MM-HH:MM activity @ area' that together cover "
        "the whole day from 00:00 to 24:00 without gaps or overlaps (sleep counts). The area "
        "is where it happens, as the world names it; leave out '@ area' to stay put.")


def hour_plan_prompt(header: str, name: str, stroke: str, start: int, end: int) -> str:
    return (
        f"{HOUR_PLAN_HEAD} {name} into blocks of about an hour: "
        f"{clock(start)}-{clock(end)} {stroke}\n{header}\n\n"
        "Answer with numbered lines 'HH:MM-HH:MM activity @ area' that cover exactly "
        f"{clock(start)} to {clock(end)} without gaps or overlaps.")


def actions_prompt(header: str, name: str, block: str, start: int, end: int) -> str:
    return (
        f"{ACTIONS_HEAD} {name}'s plan into actions of 5 to 15 minutes: "
        f"{clock(start)}-{clock(end)} {block}\n{header}\n\n"
        "Answer with numbered lines 'HH:MM-HH:MM action @ area', each 5 to 15 minutes long, "
        f"that cover exactly {clock(start)} to {clock(end)} without gaps or overlaps.")


def react_prompt(header: str, name: str, action: str, observation: str,
                 memories: Iterable[tuple[int, str]], others: Sequence[str]) -> str:
    talk = (f" To start a conversation, set \"talk_to\" to one of: {', '.join(others)}."
            if others else "")
    return (
        f"{REACT_HEAD} {name} react to the observation, and if so, what would be an "
        f"appropriate reaction?\n{header}\n{name} is {action}.\nObservation: {observation}\n\n"
        f"Relevant memories:\n{memory_lines(memories)}\n\n"
        'Answer with one JSON object: {"react": true or false, "reaction": "what '
        f'{name} does now, in a short phrase", "minutes": 5 to 60, "talk_to": null}}.{talk}')


def dialogue_prompt(header: str, name: str, other: str, memories: Iterable[tuple[int, str]],
                    turns: Sequence[tuple[str, str]], max_turns: int,
                    relationship: str = "") -> str:
    said = "\n".join(f"{who}: {text}" for who, text in turns) or "(nobody has spoken yet)"
    relation = f"{name} and {other}: {relationship}\n\n" if relationship else ""
    return (
        f"{DIALOGUE_HEAD} {name} and {other}, at most {max_turns} turns.\n{header}\n\n"
        f"{relation}What {name} remembers about {other}:\n{memory_lines(memories)}\n\n"
        f"So far:\n{said}\n\nWhat does {name} say next? Answer with one JSON object: "
        '{"utterance": "...", "end": true when the conversation is over, else false}.')


def interview_prompt(header: str, name: str, question: str,
                     memories: Iterable[tuple[int, str]]) -> str:
    return (
        f"{INTERVIEW_HEAD} {name}.\n{header}\n\nWhat {name} remembers:\n"
        f"{memory_lines(memories)}\n\nQuestion: {question}\n\nAnswer in {name}'s voice with "
        'one JSON object: {"answer": "...", "cited": [ids of the memories the answer rests on]}.')


def summary_prompt(name: str, description: str, memories: Iterable[tuple[int, str]]) -> str:
    return (
        f"{SUMMARY_HEAD} {name} in a short paragraph: core characteristics, current daily "
        f"occupation, and how {name} feels about recent progress in life.\n"
        f"Seed identity: {description}\n\nWhat {name} remembers:\n{memory_lines(memories)}"
        "\n\nAnswer with the paragraph only, in the third person.")


def walk_prompt(header: str, name: str, action: str, here: str, within: str,
                options: Sequence[str]) -> str:
    return (
        f"{WALK_HEAD} {name} go to be {action}?\n{header}\n{name} is in {here}.\n\n"
        f"Choose one area of {within or 'the town'}: {'; '.join(options)}.\n"
        "Answer with the area's name only, exactly as written.")


def object_prompt(header: str, name: str, action: str, area: str,
                  options: Sequence[str]) -> str:
    return (
        f"{OBJECT_HEAD} in {area} does {name} use while {action}?\n{header}\n\n"
        f"Choose one of: {'; '.join(options)}; or {NO_OBJECT}.\n"
        f"Answer with the object's name only, or {NO_OBJECT}.")


def state_prompt(name: str, action: str, thing: str, state: str) -> str:
    return (
        f"{STATE_HEAD} the {thing} while {name} is {action}? It was {state}.\n"
        "Answer with a short phrase (e.g. 'brewing coffee', 'in use'), nothing else.")


def relationship_prompt(header: str, name: str, other: str,
                        memories: Iterable[tuple[int, str]]) -> str:
    return (
        f"{RELATION_HEAD} between {name} and {other}, as {name} sees it?\n{header}\n\n"
        f"What {name} remembers about {other}:\n{memory_lines(memories)}\n\n"
        "Answer in one or two sentences.")


def replan_prompt(header: str, name: str, reaction: str, start: int, end: int,
                  planned: Sequence[str], memories: Iterable[tuple[int, str]]) -> str:
    before = "\n".join(f"- {line}" for line in planned) or "- nothing planned"
    return (
        f"{REPLAN_HEAD} {name} after {reaction} ({clock(start)}-{clock(end)}).\n{header}\n\n"
        f"What {name} remembers:\n{memory_lines(memories)}\n\nThe rest of the day as "
        f"planned before:\n{before}\n\nAnswer with 1 to 8 numbered lines 'HH:MM-HH:MM "
        f"activity @ area' that cover {clock(end)} to 24:00 without gaps or overlaps.")
