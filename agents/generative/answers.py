"""Reading what a model answered: numbered lines, clock times, integers, JSON objects.

Every reader returns plain data or ``None``/an empty list when the answer cannot be read;
callers turn that into a stated fallback, never an exception.
"""

from __future__ import annotations

import json
import re

NUMBERED_LINE = re.compile(r"^\s*(?:[-*]\s*)?(\d+)\s*[.):]\s*(.*?)\s*$")
CLOCK_SPAN = re.compile(
    r"^\s*\(?(\d{1,2}):(\d{2})\s*(?:-|–|—|to)\s*(\d{1,2}):(\d{2})\)?\s*[:|,-]?\s*(.*?)\s*$")
EVIDENCE = re.compile(r"\(\s*because of\s*([^)]*)\)\s*\.?\s*$", re.IGNORECASE)
INTEGER = re.compile(r"-?\d+")


def numbered_lines(text: str) -> list[str]:
    """The items of a numbered answer (``1. ...``), in order of their numbers; other lines ignored."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = NUMBERED_LINE.match(line)
        if match and match[2]:
            found.setdefault(int(match[1]), match[2])
    return [found[i] for i in sorted(found)]


def numbered_integers(text: str, count: int, low: int, high: int) -> dict[int, int]:
    """``{item number: value}`` for numbered lines whose value is an integer in [low, high].

    Item numbers outside 1..count and values out of range are left out, so a caller sees
    exactly which items the model failed to rate.
    """
    rated: dict[int, int] = {}
    for line in text.splitlines():
        match = NUMBERED_LINE.match(line)
        if not match:
            continue
        item, rest = int(match[1]), match[2]
        value = re.match(r"^(-?\d+)(?:\s*/\s*10)?\b", rest)
        if value and 1 <= item <= count and low <= int(value[1]) <= high:
            rated.setdefault(item, int(value[1]))
    return rated


def clock_span(text: str) -> tuple[int, int, str] | None:
    """``"08:00-09:30 text"`` -> (start minute, end minute, text); ``24:00`` ends a day."""
    match = CLOCK_SPAN.match(text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(match[i]) for i in range(1, 5))
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start > 24 * 60 or end > 24 * 60 or not match[5]:
        return None
    return start, end, match[5]


def with_evidence(text: str) -> tuple[str, list[int]] | None:
    """``"insight (because of 3, 7)"`` -> ("insight", [3, 7]); None without a citation."""
    match = EVIDENCE.search(text)
    if not match:
        return None
    ids = [int(n) for n in INTEGER.findall(match[1])]
    statement = text[:match.start()].strip().rstrip(".").strip()
    return (statement, ids) if ids and statement else None


def json_object(text: str) -> dict | None:
    """The first JSON object in an answer (code fences and prose around it allowed)."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


def yes_or_no(text: str) -> bool | None:
    """A leading yes/no (any case, any punctuation); None when the answer starts otherwise."""
    match = re.match(r"^\W*(yes|no)\b", text.strip(), re.IGNORECASE)
    return None if not match else match[1].lower() == "yes"
