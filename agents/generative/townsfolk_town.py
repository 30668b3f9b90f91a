"""``sim:townsfolk``'s answers to the prompts of the paper's mechanisms: a day's routine
read from who the agent is, the steps of the area-tree walk, the object used and its
state, the summary description, relationship summaries and re-planning the rest of a day.

All rule-based (a simulation, no language model). The routine: sleep at home, get ready,
work (or study) where the agent's description says it does, lunch at the cafe, work again,
the evening at a party the agent has heard of when it is that day, else dinner at home,
then rest. Places are chosen by words the action and the place share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stepwise.agents.generative import prompts as p

MEMORY = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
PARTY_AT = re.compile(
    r"party at (?P<place>[A-Z][\w' ]+?) on (?P<day>[A-Z][a-z]+ \d+)\w*"
    r"(?: from (?P<start>\d+)pm to (?P<end>\d+)pm| at (?P<at>\d+)pm)?")
TODAY = re.compile(r"\nIt is \w+ (?P<day>[A-Z][a-z]+ \d+), (?P<h>\d{2}):(?P<m>\d{2})\.")
STUDENT = re.compile(r"\bstudent\b|\bstudying\b", re.IGNORECASE)
CAFE = "Hobbs Cafe"
LATELY = " Lately on their mind: "

# Action words -> words of the sub-area or object that suits them, best first.
SUITS = [
    (r"sleep|bed|resting", ["bedroom", "room", "bed"]),
    (r"party|decorat", ["seating area", "common table", "piano"]),
    (r"lunch|dinner|breakfast|cook|eat", ["kitchen", "seating area", "stove", "kettle",
                                          "common table"]),
    (r"coffee", ["seating area", "counter", "coffee machine"]),
    ((r"running hobbs|serving|customers|shop|working at (?:the )?(?:harvey|willows)|"
     r"working at hobbs"), ["counter", "shop floor", "pharmacy counter", "cash register"]),
    (r"bar|pub|drink", ["bar", "beer tap"]),
    (r"stud|class|lectur|teach", ["classroom", "library", "study desk", "desk", "blackboard"]),
    (r"research|read|writ|thesis|paper|novel|poem|book", ["library", "writing nook", "study",
                                                          "desk", "study desk"]),
    (r"paint|photograph|draw|animat|film", ["easel", "drawing tablet", "camera"]),
    (r"relax|television", ["living room", "common room", "sofa", "television"]),
    (r"walk|park|garden", ["garden", "bench"]),
    (r"town hall|clerk|advis", ["clerk's office", "desk"]),
    (r"working|work", ["office", "desk", "computer", "study desk"]),
]
STATES = {"bed": "occupied", "coffee machine": "brewing coffee", "stove": "cooking",
          "kettle": "boiling water", "cash register": "ringing up orders",
          "television": "on", "computer": "on", "streaming computer": "on",
          "piano": "being played", "common table": "set for guests", "beer tap": "pouring",
          "easel": "holding a painting in progress"}


def between(text: str, start: str, end: str) -> str:
    """The part of ``text`` after ``start`` and before the next ``end`` ("" without
    ``start``): how the stand-in reads the fields of a prompt it answers."""
    head = text.find(start)
    if head == -1:
        return ""
    rest = text[head + len(start):]
    stop = rest.find(end)
    return rest if stop == -1 else rest[:stop]


def remembered(prompt: str) -> list[str]:
    return [m[2] for m in MEMORY.finditer(prompt)]


def suited(action: str, options: Sequence[str], name: str = "") -> str | None:
    """The option that suits ``action`` best (the agent's own room first), or None."""
    lowered = action.lower()
    if name:
        for option in options:
            if name in option and re.search(r"sleep|bed|ready|resting|relax", lowered):
                return option
    for pattern, words in SUITS:
        if re.search(pattern, lowered):
            for word in words:
                for option in options:
                    if option.lower() == word:
                        return option
    for option in options:  # the option the action names
        if option.lower() in lowered:
            return option
    return None


def party(prompt: str) -> tuple[str, int, int] | None:
    """(place, start, end) of a party the prompt's memories tell of for the prompt's day."""
    today = TODAY.search(prompt)
    day = between(prompt, f"{p.DAY_PLAN_HEAD} ", " in 5 to 8") or (today["day"] if today
                                                                   else "")
    for text in remembered(prompt):
        found = PARTY_AT.search(text)
        if found and found["day"] in day:
            start = int(found["start"] or found["at"] or 5) + 12
            end = int(found["end"]) + 12 if found["end"] else start + 2
            return found["place"], start * 60, end * 60
    return None


def routine(prompt: str) -> list[tuple[int, int, str, str]]:
    """The agent's day as (start, end, activity, area) from who the prompt says it is."""
    header = prompt[prompt.find("\n") + 1:]
    description = header.partition(": ")[2].partition("\n")[0].partition(LATELY)[0]
    home = between(prompt, "\nHome: ", ".\n")
    places = [pl.strip() for pl in between(prompt, "\nPlaces: ", ".\n").split(",") if pl]
    top = home.partition("/")[0]
    held = remembered(prompt)
    named = sorted((pl for pl in places if pl != top and pl in description), key=description.find)
    work = named[0] if named else home
    out = next((pl for pl in places if pl not in (top, work) and any(pl in t for t in held)),
               home)
    doing = ("studying at " if STUDENT.search(description) else "working at ") + work
    if work == home:
        doing = f"spending the day at {out}" if out != home else "working at home"
        work = out
    if work.startswith(CAFE) and "owner" in description:
        doing = "running Hobbs Cafe"
    coffee = CAFE in places and doing != "running Hobbs Cafe" and \
        any("coffee" in t.lower() for t in held)
    lunch = CAFE if CAFE in places else home
    evening = party(prompt)
    hosting = evening is not None and "planning a Valentine's Day party" in description
    if evening:
        place, start, end = evening
        what = "hosting the Valentine's Day party" if hosting else \
            "going to the Valentine's Day party"
        night = [(1020, start, "having dinner", home if not hosting else place),
                 (start, end, what, place), (end, 1440, "relaxing and going to bed", home)]
        if hosting:
            night[0] = (1020, start, "decorating the cafe for the party", place)
    else:
        night = [(1020, 1140, "having dinner", home), (1140, 1440, "relaxing and going to bed",
                                                        home)]
    morning = [(480, 540, "having morning coffee", CAFE), (540, 720, doing, work)] if coffee \
        else [(480, 720, doing, work)]
    return [(0, 420, "sleeping", home), (420, 480, "getting ready for the day", home),
            *morning, (720, 780, "having lunch", lunch),
            (780, 1020, doing, work), *[(a, b, t, w) for a, b, t, w in night if b > a]]


def spans(plan: Sequence[tuple[int, int, str, str]]) -> str:
    return "\n".join(f"{i}. {p.clock(a)}-{p.clock(b)} {text}" + (f" @ {area}" if area else "")
                     for i, (a, b, text, area) in enumerate(plan, 1))


def day_plan(prompt: str) -> str:
    return spans(routine(prompt))


def replan(prompt: str) -> str:
    """The routine from the end of the reaction to midnight."""
    found = re.search(r"\((\d{2}):(\d{2})-(\d{2}):(\d{2})\)\.\n", prompt)
    start = int(found[3]) * 60 + int(found[4]) if found else 0
    rest = [(max(a, start), b, text, area) for a, b, text, area in routine(prompt) if b > start]
    return spans(rest)


def walk(prompt: str) -> str:
    options = [o.strip() for o in between(prompt, ": ", ".\nAnswer").split(";")]
    options = [o for o in options if o] or [""]
    name = between(prompt, f"{p.WALK_HEAD} ", " go to be ")
    action = between(prompt, " go to be ", "?\n")
    home = between(prompt, "\nHome: ", ".\n")
    chosen = suited(action, options, name)
    if chosen is None:
        chosen = next((o for o in options if o and (home.startswith(o + "/") or home == o)),
                      options[0])
    return chosen


def choose_object(prompt: str) -> str:
    options = [o.strip() for o in between(prompt, "Choose one of: ", f"; or {p.NO_OBJECT}")
               .split(";") if o.strip()]
    action = between(prompt, " use while ", "?\n")
    suits = [(pattern, words) for pattern, words in SUITS if re.search(pattern, action.lower())]
    for _, words in suits:
        for word in words:
            if word in options:
                return word
    return p.NO_OBJECT


def object_state(prompt: str) -> str:
    thing = between(prompt, f"{p.STATE_HEAD} the ", " while ")
    return STATES.get(thing, "in use")


def relationship(prompt: str) -> str:
    pair = between(prompt, f"{p.RELATION_HEAD} between ", ", as ")
    name, _, other = pair.partition(" and ")
    first = other.split()[0] if other else other
    about = [t for t in remembered(prompt) if other in t or re.search(rf"\b{first}\b", t)]
    if not about:
        return f"{name} has only seen {other} around town."
    return f"{name} knows {other}: {about[0]}"


def summary(prompt: str) -> str:
    """The seed identity, and the newest news the agent remembers."""
    seed = between(prompt, "Seed identity: ", "\n")
    news = [t for t in remembered(prompt) if re.search(r"party|mayor|election", t, re.IGNORECASE)]
    return seed + (f"{LATELY}{news[-1]}" if news else "")
