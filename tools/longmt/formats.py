"""The text the LongMT memory tools return, and how the translation prompt quotes it.

One place for these formats, because three parties read them: the model (as tool results
and as context in the translation prompt), the simulated translator (which parses them to
use only the context an agent actually retrieved), and people reading a step trace.
Page numbers are counted from 1 wherever a model sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stepwise.memory.translation import EntityRecord

VIEW_SUMMARIES = "view_summaries"
VIEW_PAGES = "view_pages"
LOOKUP_ENTITIES = "lookup_entities"
MODULES = (VIEW_SUMMARIES, VIEW_PAGES, LOOKUP_ENTITIES)
SHORT_NAMES = {"summaries": VIEW_SUMMARIES, "pages": VIEW_PAGES, "entities": LOOKUP_ENTITIES}

NOTHING_FOUND = "(nothing found)"

CONTEXT_BLOCK = re.compile(r'<context source="(?P<source>\w+)">\n(?P<body>.*?)\n</context>', re.DOTALL)
SUMMARY_LINE = re.compile(r"^Page (?P<page>\d+): (?P<text>.*)$")
SENTENCE_LINE = re.compile(r"^Page (?P<page>\d+), line (?P<line>\d+): (?P<source>.*?) => "
                           r"(?P<translation>.*)$")
ENTITY_LINE = re.compile(r"^(?P<name>.+?) => (?P<translation>.+?)(?: \((?P<note>.*)\))?$")


def summaries_text(summaries: Iterable[tuple[int, str]]) -> str:
    """``Page 3: summary`` lines; pages given from 0, shown from 1."""
    lines = [f"Page {page + 1}: {' '.join(text.split())}" for page, text in summaries]
    return "\n".join(lines) or NOTHING_FOUND


def sentences_text(pairs: Iterable[tuple[int, int, str, str]]) -> str:
    """``Page 2, line 4: source => translation`` lines; pages and lines shown from 1."""
    lines = [f"Page {page + 1}, line {line + 1}: {' '.join(src.split())} => "
             f"{' '.join(tgt.split())}" for page, line, src, tgt in pairs]
    return "\n".join(lines) or NOTHING_FOUND


def entities_text(records: Iterable[EntityRecord]) -> str:
    """``name => translation (type; description)`` lines."""
    lines = []
    for record in records:
        note = "; ".join(part for part in (record.type, record.description) if part)
        lines.append(f"{record.name} => {record.translation}" + (f" ({note})" if note else ""))
    return "\n".join(lines) or NOTHING_FOUND


def context_block(source: str, body: str) -> str:
    """One retrieved tool result, quoted in the translation prompt."""
    return f'<context source="{source}">\n{body}\n</context>'


def context_blocks(text: str) -> dict[str, str]:
    """The quoted tool results in a prompt, by tool name (results of one tool joined)."""
    found: dict[str, list[str]] = {}
    for match in CONTEXT_BLOCK.finditer(text):
        found.setdefault(match["source"], []).append(match["body"])
    return {source: "\n".join(bodies) for source, bodies in found.items()}
