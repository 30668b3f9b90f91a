"""``sim:townsfolk``: a simulation of the language model behind generative agents.

Rule-based and deterministic, no language model: it reads the agent's own prompts (told
apart by their heads, see prompts.py) and answers in their formats from what the prompt
holds. Townsfolk keep a fixed daily routine (the cafe owner runs the cafe; others have
coffee there when their memories say they do, study in the dorm's common room, lunch at
the cafe), rate party news and conversations as important, talk to whoever they see when
they know about a party, and pass the invitation on. It exists so that simulations,
scenarios and tests run offline; everything it produces is simulated.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from stepwise.agents.generative import prompts as p
from stepwise.agents.generative.answers import numbered_lines
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import register_sim, word_usage

MEMORY = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
SPAN = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2}) (.*)")
FULL_NAME = re.compile(r"\b([A-Z][a-z]+ [A-Z][a-z]+)(?= (?:is|said|runs|lives)\b)")
PARTY = re.compile(r"party", re.IGNORECASE)
HOST = re.compile(r'^(.+?) said to .+?: ".*(?:hosting|my) .*party', re.IGNORECASE)


def between(text: str, start: str, end: str) -> str:
    head = text.find(start)
    if head == -1:
        return ""
    rest = text[head + len(start):]
    stop = rest.find(end)
    return rest if stop == -1 else rest[:stop]


def memories(text: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in MEMORY.finditer(text)]


def importance(text: str) -> int:
    lowered = text.lower()
    if "party" in lowered or "valentine" in lowered or "crush" in lowered:
        return 8
    if " said to " in lowered:
        return 5
    if "plan" in lowered:
        return 3
    if re.search(r" is (idle|off|empty|made|running|sleeping)\b", lowered):
        return 1
    return 2


def rate(prompt: str) -> str:
    items = numbered_lines(between(prompt, "memories below.\n\n", "\n\nAnswer with"))
    return "\n".join(f"{i}. {importance(text)}" for i, text in enumerate(items, 1))


def questions(prompt: str) -> str:
    names: dict[str, int] = {}
    for _, text in memories(prompt):
        for name in FULL_NAME.findall(text):
            names[name] = names.get(name, 0) + 1
    top = sorted(names, key=lambda n: (-names[n], n))[:2] or ["everyone here"]
    asked = [f"What is {name} busy with these days?" for name in top]
    asked.append("Who is organising a party, and who has been invited?")
    return "\n".join(f"{i}. {q}" for i, q in enumerate(asked[:3], 1))


def insights(prompt: str) -> str:
    subject = between(prompt, "Statements about ", ":\n").strip()
    held = memories(prompt)
    found: list[str] = []
    party = [mid for mid, text in held if PARTY.search(text)]
    if party:
        found.append(f"{subject} knows about a Valentine's Day party at Hobbs Cafe "
                     f"(because of {', '.join(map(str, party[:4]))})")
    names: dict[str, list[int]] = {}
    for mid, text in held:
        for name in set(FULL_NAME.findall(text)) - {subject}:
            names.setdefault(name, []).append(mid)
    for name in sorted(names, key=lambda n: (-len(names[n]), n)):
        found.append(f"{subject} has been spending time with {name} "
                     f"(because of {', '.join(map(str, names[name][:4]))})")
    return "\n".join(f"{i}. {text}" for i, text in enumerate(found[:5], 1))


def place(places: list[str], *words: str) -> str:
    return next((pl for pl in places if all(w.lower() in pl.lower() for w in words)), "")


def day_plan(prompt: str) -> str:
    name = between(prompt, p.DAY_PLAN_HEAD + " ", " for ").strip()
    places = [pl.strip() for pl in between(prompt, "\nPlaces: ", ".\n").split(",")]
    home = place(places, name) or place(places, name.split()[0]) or place(places, "home")

    def cafe(room: str) -> str:
        return place(places, "Hobbs Cafe", room)

    description = between(prompt, f"\n{name}: ", "\n")
    remembered = " ".join(text for _, text in memories(prompt))
    if "owner of Hobbs Cafe" in description:
        plan = [(0, 420, "sleeping", home), (420, 480, "getting ready for the day", home),
                (480, 720, "running Hobbs Cafe", cafe("counter")),
                (720, 780, "having lunch", cafe("kitchen")),
                (780, 1020, "serving customers", cafe("counter")),
                (1020, 1140, "decorating the cafe", cafe("seating area")),
                (1140, 1440, "resting at home", home)]
    else:
        coffee = "coffee" in remembered.lower()
        common = place(places, "common room") or home
        plan = [(0, 450, "sleeping", home), (450, 480, "getting ready for the day", home),
                (480, 540, "having morning coffee" if coffee else "reading at the desk",
                 cafe("seating area") if coffee else home),
                (540, 600, "working at the desk", home),
                (600, 720, "studying in the common room", common),
                (720, 780, "having lunch", cafe("seating area")),
                (780, 1080, "working at the desk", home),
                (1080, 1440, "relaxing and sleeping", home)]
    return spans(plan)


def spans(plan: list[tuple[int, int, str, str]]) -> str:
    return "\n".join(f"{i}. {p.clock(a)}-{p.clock(b)} {text}" + (f" @ {area}" if area else "")
                     for i, (a, b, text, area) in enumerate(plan, 1))


def split(prompt: str, head: str, size: int) -> str:
    match = SPAN.search(between(prompt, head, "\n"))
    if not match:
        return "I am not sure."
    start, end = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
    cuts = list(range(start, end, size)) + [end]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < 5:
        cuts[-2] = cuts[-1] - 5 if size == 15 else cuts[-3]
        cuts = sorted(set(cuts))
    return spans([(a, b, match[5], "") for a, b in itertools.pairwise(cuts)])


def react(prompt: str) -> str:
    options = [o.strip().rstrip(".") for o in between(prompt, "to one of: ", "\n").split(",")
               if o.strip()]
    observation = between(prompt, "Observation: ", "\n")
    knows = any(PARTY.search(text) for _, text in memories(prompt))
    for other in options:
        if knows and other in observation and f"{other} is sleeping" not in observation:
            return json.dumps({"react": True, "reaction": f"inviting {other} to the party",
                               "minutes": 10, "talk_to": other})
    return json.dumps({"react": False, "reaction": "", "minutes": 5, "talk_to": None})


def speak(prompt: str) -> str:
    pair = between(prompt, p.DIALOGUE_HEAD + " ", ", at most")
    other = pair.partition(" and ")[2]
    said = between(prompt, "So far:\n", "\n\nWhat does").splitlines()
    said = [] if said == ["(nobody has spoken yet)"] else said
    held = [text for _, text in memories(prompt)]
    hosts = [HOST.match(text)[1] for text in held if HOST.match(text)]
    party_said = any(PARTY.search(line) for line in said)
    if len(said) >= 3:
        return json.dumps({"utterance": f"See you later, {other.split()[0]}!", "end": True})
    if not party_said and any("planning a Valentine's Day party" in t for t in held):
        text = (f"Hi {other.split()[0]}! I'm hosting a Valentine's Day party at Hobbs Cafe on "
                "February 14th from 5pm to 7pm. Would you like to come?")
    elif not party_said and any(PARTY.search(t) for t in held):
        host = hosts[0] if hosts else "someone"
        text = (f"Have you heard? {host} is hosting a Valentine's Day party at Hobbs Cafe on "
                "February 14th at 5pm. Want to come along?")
    elif said and PARTY.search(said[-1]) and said[-1].endswith("?"):
        text = "That sounds wonderful, I'd love to come to the party!"
    elif said and PARTY.search(said[-1]):
        text = "Wonderful, see you there!"
    else:
        text = f"Hi {other.split()[0]}, how is your day going?" if not said else \
            "Pretty good, thanks for asking."
    return json.dumps({"utterance": text, "end": False})


def interview(prompt: str) -> str:
    """The memory sharing most words with the question (the newest of equals), cited."""
    words = set(re.findall(r"[a-z']{4,}", between(prompt, "Question: ", "\n").lower()))
    overlap = [(len(words & set(re.findall(r"[a-z']{4,}", text.lower()))), mid, text)
               for mid, text in memories(prompt)]
    best = max(overlap, default=(0, 0, ""))
    if best[0] == 0:
        return json.dumps({"answer": "I don't know anything about that.", "cited": []})
    return json.dumps({"answer": f"Yes. {best[2]}", "cited": [best[1]]})


def answer(prompt: str) -> str:
    rules = [(p.IMPORTANCE_HEAD, rate), (p.QUESTIONS_HEAD, questions),
             (p.INSIGHTS_HEAD, insights), (p.DAY_PLAN_HEAD, day_plan),
             (p.HOUR_PLAN_HEAD, lambda t: split(t, "about an hour: ", 60)),
             (p.ACTIONS_HEAD, lambda t: split(t, "5 to 15 minutes: ", 15)),
             (p.DIALOGUE_HEAD, speak), (p.INTERVIEW_HEAD, interview), (p.REACT_HEAD, react)]
    for head, rule in rules:
        if prompt.startswith(head) or (head == p.QUESTIONS_HEAD and head in prompt) or \
                (head == p.INSIGHTS_HEAD and head in prompt):
            return rule(prompt)
    return "I only answer a generative agent's prompts."


@register_sim("townsfolk")
class TownsfolkSimChatModel(ToolCallingMixin, BaseChatModel):
    """Simulation: a rule-based stand-in for a generative agent's model (see module doc)."""

    @property
    def _llm_type(self) -> str:
        return "sim-townsfolk"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params("stepwise-sim", "sim:townsfolk")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        prompt = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        text = answer(prompt)
        message = AIMessage(content=text, usage_metadata=word_usage(messages, len(text.split())),
                            response_metadata={"model_name": "sim:townsfolk", "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=message)])
