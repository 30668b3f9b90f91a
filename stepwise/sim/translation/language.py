"""The synthetic language ``qsy`` of the simulated translation world.

``qsy`` (an ISO 639 local-use code) is English with every ASCII letter swapped by one fixed
permutation, case kept; nothing else changes, so ``decode(encode(text)) == text`` for any
text. The permutation is part of the language, not of a world file, so the simulated
translator knows it without being told.

On top of the letters, three marked forms stand for things the translator can only get
right with context from earlier pages (``~``, ``^`` and ``*`` never occur in the raw text):

- ``~Xyz``: an entity alias, the first letters of an encoded name; the full name is in the
  entity records (``lookup_entities``).
- ``word^cod`` introduces a reference code; later a bare ``^cod`` stands for the word, and
  only the summary of the introducing page says what it was (``view_summaries``).
- ``*word``: a phrase abbreviation, the first word of a bigram seen earlier; the earlier
  sentence shows the second word (``view_pages``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from stepwise.tools.longmt.formats import LOOKUP_ENTITIES, VIEW_PAGES, VIEW_SUMMARIES

LANGUAGE = "qsy"
PLAIN = string.ascii_lowercase
CIPHER = "lsygpktcrvwaoxjmuqndbhfize"  # fixed: the language, the same in every world
MARKS = "~^*"

_ENCODE = str.maketrans(PLAIN + PLAIN.upper(), CIPHER + CIPHER.upper())
_DECODE = str.maketrans(CIPHER + CIPHER.upper(), PLAIN + PLAIN.upper())

ALIAS = re.compile(r"~(?P<stem>[A-Za-z]+)")
GLOSS = re.compile(r"(?P<word>[A-Za-z]+)\^(?P<code>[a-z]{3})(?![A-Za-z])")
REFERENCE = re.compile(r"(?<![A-Za-z])\^(?P<code>[a-z]{3})(?![A-Za-z])")
PHRASE = re.compile(r"\*(?P<word>[A-Za-z]+)")
MARKED = re.compile(
    r"~(?P<alias>[A-Za-z]+)"
    r"|(?P<word>[A-Za-z]+)\^(?P<gloss>[a-z]{3})(?![A-Za-z])"
    r"|\^(?P<ref>[a-z]{3})(?![A-Za-z])"
    r"|\*(?P<phrase>[A-Za-z]+)")
WORD = re.compile(r"[A-Za-z]+")


def encode(text: str) -> str:
    """English (or any text) into ``qsy``: ASCII letters permuted, case kept, the rest as is."""
    return text.translate(_ENCODE)


def decode(text: str) -> str:
    """``qsy`` back into English; the inverse of ``encode`` on any text."""
    return text.translate(_DECODE)


def strip_marks(text: str) -> str:
    """Text without the characters reserved for marked forms."""
    return text.translate({ord(c): None for c in MARKS})


def marker_modules(source_lines: Iterable[str]) -> list[str]:
    """The memory tools a page's marked forms call for: the ``markers`` baseline policy.

    ``lookup_entities`` for an alias, ``view_summaries`` for a bare reference (a gloss
    explains itself), ``view_pages`` for a phrase abbreviation; in the agent's tool order.
    A heuristic, not the optimum: a form the memory cannot resolve yet, or a module whose
    interference costs more than it resolves, makes it wrong (the exact best sets are
    ``oracle.WorldOracle.best_sets``).
    """
    text = "\n".join(source_lines)
    needed = {VIEW_SUMMARIES: bool(REFERENCE.search(text)), VIEW_PAGES: bool(PHRASE.search(text)),
              LOOKUP_ENTITIES: bool(ALIAS.search(text))}
    return [name for name in (VIEW_SUMMARIES, VIEW_PAGES, LOOKUP_ENTITIES) if needed[name]]
