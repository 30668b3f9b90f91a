"""Splitting a line of text into sentences, by language family, without losing a character.

A sentence keeps the whitespace that follows it, so the sentences of a line joined give
the line back exactly; paging and round trips rest on that. Rules:

- Chinese and Japanese: a sentence ends after 。！？；… (or ……), with any closing quotes
  and brackets that follow; Latin-script sentences inside follow the Latin rule, and also
  end before a Chinese or Japanese character.
- Latin and Cyrillic scripts: a sentence ends after . ! ? or …, with closing quotes and
  brackets, when whitespace and a capital, digit or opening quote follow; not after a known
  abbreviation (Mr., e.g., U.S.), a single initial (J. R. R.), or inside a decimal (3.14).

A regular-expression splitter, not a trained one, so that the result is the same on every
machine and its mistakes can be read off the rules.
"""

from __future__ import annotations

import itertools
import re

from stepwise.documents.language_codes import base_language
from stepwise.errors import StepwiseError

CJK_LANGUAGES = frozenset({"zh", "ja"})
LATIN_LANGUAGES = frozenset({
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "no", "nb", "fi", "is", "pl", "cs",
    "sk", "sl", "hr", "sr", "bs", "ro", "hu", "et", "lv", "lt", "tr", "id", "ms", "vi", "ca",
    "eu", "gl", "ga", "cy", "sq", "af", "sw", "ru", "uk", "be", "bg", "mk", "el", "kk",
})
# The synthetic language of the simulated translation world (an ISO 639 local-use code).
SYNTHETIC_LANGUAGES = frozenset({"qsy"})
KNOWN_LANGUAGES = CJK_LANGUAGES | LATIN_LANGUAGES | SYNTHETIC_LANGUAGES

ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf",
    "no", "nos", "vol", "fig", "inc", "ltd", "co", "corp", "dept", "gen", "gov", "sgt", "capt",
    "col", "lt", "rev", "ave", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m", "approx", "ca", "al",
})

CLOSERS = "\"'”’」』）)】》〉]"
CJK_END = re.compile(rf"(?:……|[。！？；!?…]+)[{re.escape(CLOSERS)}]*")
LATIN_END = re.compile(
    rf"(?:\.{{3}}|[.!?…]+)[{re.escape(CLOSERS)}]*(?P<space>\s+)(?=[\"'“‘(\[«¿¡]?[A-ZÀ-ÞА-Я0-9])")
LATIN_BEFORE_CJK = re.compile(
    rf"(?:\.{{3}}|[.!?…]+)[{re.escape(CLOSERS)}]*(?P<space>\s+)(?=[\u3040-\u30ff\u4e00-\u9fff])")
WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def language_family(lang: str) -> str:
    """``cjk`` or ``latin`` for a language code such as ``zh``, ``zh-CN`` or ``en_US``."""
    base = base_language(lang)
    if base in CJK_LANGUAGES:
        return "cjk"
    if base in LATIN_LANGUAGES or base in SYNTHETIC_LANGUAGES:
        return "latin"
    known = ", ".join(sorted(KNOWN_LANGUAGES))
    raise StepwiseError(f"unknown language code {lang!r} (known: {known})")


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the full stop ending at ``end`` closes an abbreviation or an initial."""
    match = WORD_BEFORE.search(text[:end])
    if not match:
        return False
    word = match.group(1).lower().strip(".")
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _latin_cuts(line: str) -> list[int]:
    cuts = []
    for match in LATIN_END.finditer(line):
        stop = match.start("space")
        punct = match.group(0)
        if punct.startswith(".") and not punct.startswith("...") and \
                _is_abbreviation(line, match.start() + 1):
            continue
        cuts.append(stop + len(match.group("space")))
    return cuts


def _cjk_cuts(line: str) -> list[int]:
    cuts = []
    for match in CJK_END.finditer(line):
        end = match.end()
        while end < len(line) and line[end].isspace():
            end += 1
        if end < len(line):
            cuts.append(end)
    cuts += [m.end() for m in LATIN_BEFORE_CJK.finditer(line)]
    return sorted(set(cuts) | set(_latin_cuts(line)))


def split_sentences(line: str, lang: str) -> list[str]:
    """The sentences of one line; ``"".join(result) == line`` always holds."""
    if not line:
        return []
    cuts = _cjk_cuts(line) if language_family(lang) == "cjk" else _latin_cuts(line)
    bounds = [0, *[c for c in cuts if 0 < c < len(line)], len(line)]
    return [line[a:b] for a, b in itertools.pairwise(bounds) if b > a]
