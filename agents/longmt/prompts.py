"""The LongMT agent's prompts, and the parsing of what comes back.

Each prompt opens with a fixed head (``QUERY_HEAD`` ...) so that logs, traces and the
simulated translator can tell the four kinds of request apart. Page and line numbers are
counted from 1 wherever a model sees them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from stepwise.documents.language_codes import base_language
from stepwise.errors import StepwiseError
from stepwise.tools.longmt.formats import context_block

LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "de": "German",
    "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "ru": "Russian",
    "nl": "Dutch", "cs": "Czech", "pl": "Polish", "tr": "Turkish", "ar": "Arabic",
    "qsy": "Synthetic (a simulated language)",
}

SYSTEM_PROMPT = ("You are a professional translator working through a long document page by "
                 "page, keeping names, terms and references consistent across pages.")

QUERY_HEAD = "Before translating page"
TRANSLATE_HEAD = "Translate page"
SUMMARY_HEAD = "Summarize page"
ENTITIES_HEAD = "List the named entities of page"

# The documented answer of a decision turn that calls no module (``query_prompt``).
NO_MODULES_REPLY = "no modules"

NUMBERED_LINE = re.compile(r"^\s*(\d+)[.)、:]\s?(.*)$")
PAGE_BLOCK = re.compile(r"<(?P<tag>page|source|translation)[^>]*>\n(?P<body>.*?)\n</(?P=tag)>", re.DOTALL)


def language_name(code: str) -> str:
    """The language's name for a prompt; an unknown or malformed code is named as it is."""
    try:
        return LANGUAGE_NAMES.get(base_language(code), code)
    except StepwiseError:
        return code


def numbered(lines: Sequence[str]) -> str:
    return "\n".join(f"{i}. {' '.join(line.split())}" for i, line in enumerate(lines, 1))


def query_prompt(page: int, page_count: int, src: str, tgt: str, lines: Sequence[str]) -> str:
    """The decision turn: which memory modules does this page need? (``page`` from 0)"""
    return (
        f"{QUERY_HEAD} {page + 1} of {page_count} ({language_name(src)} into "
        f"{language_name(tgt)}), call the memory tools this page needs, if any: context "
        "that does not help can hurt. When you have what you need, reply without a tool "
        f"call; if the page needs none of them, reply exactly: {NO_MODULES_REPLY}\n\n"
        f'<page number="{page + 1}">\n{numbered(lines)}\n</page>')


def translate_prompt(page: int, page_count: int, src: str, tgt: str, lines: Sequence[str],
                     context: Sequence[tuple[str, str]]) -> str:
    """The translation request: retrieved context (tool name, result), then numbered lines."""
    blocks = "".join(context_block(source, body) + "\n\n" for source, body in context)
    return (
        f"{TRANSLATE_HEAD} {page + 1} of {page_count} from {language_name(src)} into "
        f"{language_name(tgt)}.\n\n{blocks}"
        f'<page number="{page + 1}">\n{numbered(lines)}\n</page>\n\n'
        f"Answer with exactly {len(lines)} numbered lines: line i is the translation of "
        "source line i. Write nothing else.")


def retry_prompt(expected: int, got: int) -> str:
    return (f"Your answer had {got} numbered lines, but the page has {expected}. Answer again "
            f"with exactly {expected} numbered lines, one per source line, and nothing else.")


def summary_prompt(page: int, tgt: str, source: Sequence[str], translation: Sequence[str]) -> str:
    return (
        f"{SUMMARY_HEAD} {page + 1} in {language_name(tgt)}, in at most three sentences, "
        "keeping what later pages may refer back to (who, what, and what things are called)."
        f"\n\n<source>\n{numbered(source)}\n</source>\n\n"
        f"<translation>\n{numbered(translation)}\n</translation>")


def entities_prompt(page: int, source: Sequence[str], translation: Sequence[str],
                    known: Sequence[str]) -> str:
    recorded = ", ".join(known) if known else "none yet"
    return (
        f"{ENTITIES_HEAD} {page + 1} (people, places, organisations, titles, terms) with "
        "their translations on this page, as a JSON array of objects with the keys "
        '"name" (as written in the source), "translation", "type" and "description" '
        '(one line). Add "replace": true only to correct a recorded translation. Already '
        f"recorded: {recorded}. Answer with the JSON array only."
        f"\n\n<source>\n{numbered(source)}\n</source>\n\n"
        f"<translation>\n{numbered(translation)}\n</translation>")


def numbered_lines(text: str) -> list[str]:
    """The translations in a numbered answer, in order; unnumbered lines are ignored."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = NUMBERED_LINE.match(line)
        if match and match[2].strip():
            found.setdefault(int(match[1]), match[2].strip())
    return [found[i] for i in sorted(found)]


def is_no_modules_reply(text: str, *also: str) -> bool:
    """Whether an answer is the no-modules reply (or one of ``also``), ignoring case,
    quotes, whitespace and end punctuation: the one prose answer that is a decision."""
    def canonical(value: str) -> str:
        return " ".join(value.strip().strip("\"'`*.!").lower().split())
    return canonical(text) in {canonical(NO_MODULES_REPLY), *map(canonical, also)}


def blocks(text: str) -> dict[str, list[str]]:
    """The numbered ``<page>``, ``<source>`` and ``<translation>`` blocks of a prompt."""
    return {m["tag"]: numbered_lines(m["body"]) for m in PAGE_BLOCK.finditer(text)}


def json_array(text: str) -> list | None:
    """The first JSON array in a model's answer (code fences allowed); None when there is none."""
    start = text.find("[")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("[", start + 1)
            continue
        return value if isinstance(value, list) else None
    return None
