"""``sim:townsfolk``: a simulation of the language model behind generative agents.

Rule-based and deterministic, no language model: it reads the agent's own prompts (told
apart by their heads, see prompts.py) and answers in their formats from what the prompt
holds. Townsfolk keep a fixed daily routine (the cafe owner runs the cafe; others have
coffee there when their memories say they do, study in the dorm's common room, lunch at
the cafe), rate party news and conversations as important, talk to whoever they see when
they know about a party (or another piece of news: a candidacy), and pass it on. The
prompts of the paper's mechanisms (a routine for any town, the area-tree walk, objects,
summaries) are answered in ``townsfolk_town.py``. It exists so that simulations,
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
from stepwise.agents.generative import townsfolk_town as town
from stepwise.agents.generative.answers import numbered_lines
from stepwise.agents.generative.townsfolk_town import between
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import register_sim, word_usage

MEMORY = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
SPAN = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2}) (.*)")
FULL_NAME = re.compile(r"\b([A-Z][a-z]+ [A-Z][a-z]+)(?= (?:is|said|runs|lives)\b)")
PARTY = re.compile(r"party", re.IGNORECASE)
ELECTION = re.compile(r"mayor|election", re.IGNORECASE)
TOPICS = (PARTY, ELECTION)  # the news townsfolk pass on, in the order they tell it
SAID = re.compile(r'^(?P<speaker>.+?) said to .+?: "(?P<text>.*)"$')
THANKS = "Thanks for telling me, I'll think about it."
ACCEPT = "That sounds wonderful, I'd love to come to the party!"
SEE_YOU = "Wonderful, see you there!"
REPLIES = (THANKS, ACCEPT, SEE_YOU)  # answers to news, which are not news to pass on
LAST_WORD = 5  # utterances after which a townsfolk ends a conversation whatever is untold
OWN_NEWS = re.compile(r"^I am (?P<what>(?:planning|running|hosting) .*?)\.?$")
INTERVIEW_MEMORIES = 2  # an interview answer joins the memories that share most words



def memories(text: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in MEMORY.finditer(text)]


def importance(text: str) -> int:
    lowered = text.lower()
    if "party" in lowered or "valentine" in lowered or "crush" in lowered or \
            ELECTION.search(lowered):
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
    if "\nHome: " in prompt:  # an agent of the paper's mechanisms: a routine for any town
        return town.day_plan(prompt)
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
    knows = any(topic.search(text) for _, text in memories(prompt) for topic in TOPICS)
    for other in options:
        if knows and other in observation and f"{other} is sleeping" not in observation:
            news = "the party" if any(PARTY.search(t) for _, t in memories(prompt)) else \
                "the news"
            return json.dumps({"react": True, "reaction": f"telling {other} about {news}",
                               "minutes": 10, "talk_to": other})
    return json.dumps({"react": False, "reaction": "", "minutes": 5, "talk_to": None})


def news(held: list[str], name: str) -> list[tuple[re.Pattern[str], str]]:
    """(topic, sentence to tell) for each piece of news the memories hold, by topic: the
    agent's own plans first ("I'm running for mayor ..."), else what it was told, with the
    teller named ("Sam Moore is running for mayor ..."); a reply to news is not news."""
    found: dict[re.Pattern[str], str] = {}
    for text in held:
        own = OWN_NEWS.match(text)
        said = SAID.match(text)
        for topic in TOPICS:
            if topic in found or not topic.search(text):
                continue
            if own:
                found[topic] = f"I'm {own['what']}."
            elif said and said["speaker"] != name and said["text"] not in REPLIES:
                sentence = next((s.strip() for s in re.split(r"(?<=[.!?])\s+", said["text"])
                                 if topic.search(s)), "")
                sentence = re.sub(r"^(?:Hi \w+! |Have you heard\? )", "", sentence)
                sentence = re.sub(r"^I'm ", f"{said['speaker']} is ", sentence)
                if sentence and not sentence.endswith("?"):
                    found[topic] = sentence
    return [(topic, found[topic]) for topic in TOPICS if topic in found]


def speak(prompt: str) -> str:
    """Tell the first piece of news not yet told in this conversation; answer news."""
    pair = between(prompt, p.DIALOGUE_HEAD + " ", ", at most")
    name, _, other = pair.partition(" and ")
    said = between(prompt, "So far:\n", "\n\nWhat does").splitlines()
    said = [] if said == ["(nobody has spoken yet)"] else said
    held = [text for _, text in memories(prompt)]
    first = other.split()[0]
    untold = [(topic, sentence) for topic, sentence in news(held, name)
              if not any(topic.search(line) for line in said)]
    last = said[-1] if said else ""
    asked = last.endswith("?") and any(topic.search(last) for topic in TOPICS)
    if len(said) >= LAST_WORD or (len(said) >= 3 and not (untold or asked)):
        return json.dumps({"utterance": f"See you later, {first}!", "end": True})
    if asked:
        text = ACCEPT if PARTY.search(last) else THANKS
    elif untold:
        topic, sentence = untold[0]
        ask = "Would you like to come?" if topic is PARTY else "What do you think?"
        text = (f"Hi {first}! {sentence} {ask}" if sentence.startswith("I'm") else
                f"Have you heard? {sentence} {ask}")
    elif last and any(topic.search(last) for topic in TOPICS):
        text = SEE_YOU
    elif last == THANKS:
        text = "Glad to, see you around!"
    else:
        text = f"Hi {first}, how is your day going?" if not said else \
            "Pretty good, thanks for asking."
    return json.dumps({"utterance": text, "end": False})


def interview(prompt: str) -> str:
    """The two memories sharing most words with the question (the newer of equals first),
    cited: one memory often holds only part of an answer (who hosts, but not where)."""
    words = set(re.findall(r"[a-z']{4,}", between(prompt, "Question: ", "\n").lower()))
    overlap = sorted(((len(words & set(re.findall(r"[a-z']{4,}", text.lower()))), mid, text)
                      for mid, text in memories(prompt)), reverse=True)
    best = [(mid, text) for shared, mid, text in overlap[:INTERVIEW_MEMORIES] if shared]
    if not best:
        return json.dumps({"answer": "I don't know anything about that.", "cited": []})
    return json.dumps({"answer": "Yes. " + " ".join(text for _, text in best),
                       "cited": [mid for mid, _ in best]})


def answer(prompt: str) -> str:
    rules = [(p.IMPORTANCE_HEAD, rate), (p.QUESTIONS_HEAD, questions),
             (p.INSIGHTS_HEAD, insights), (p.DAY_PLAN_HEAD, day_plan),
             (p.HOUR_PLAN_HEAD, lambda t: split(t, "about an hour: ", 60)),
             (p.ACTIONS_HEAD, lambda t: split(t, "5 to 15 minutes: ", 15)),
             (p.DIALOGUE_HEAD, speak), (p.INTERVIEW_HEAD, interview),
             (p.SUMMARY_HEAD, town.summary), (p.WALK_HEAD, town.walk),
             (p.OBJECT_HEAD, town.choose_object), (p.STATE_HEAD, town.object_state),
             (p.RELATION_HEAD, town.relationship), (p.REPLAN_HEAD, town.replan),
             (p.REACT_HEAD, react)]
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
