"""Does a document say the same thing the same way: entity consistency and glossary terms.

BLEU rewards a name translated two ways on two pages as long as one matches each
reference; a reader sees two different people. These measures count that directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stepwise.scoring.errors import ScoringError


@dataclass(frozen=True)
class EntityConsistency:
    """The share of repeated entity mentions translated as at their first mention."""

    score: float
    repeats: int  # second and later occurrences of a source entity
    consistent: int  # of those, translated exactly as at the first occurrence


def entity_consistency(occurrences: Iterable[tuple[str, str]]) -> EntityConsistency:
    """Score (source entity, translation used) pairs given in document order.

    Each entity's first occurrence fixes its translation; every later occurrence counts
    as consistent when it uses the same translation. With no repeats the score is 1.0.
    """
    first: dict[str, str] = {}
    repeats = consistent = 0
    for source, translation in occurrences:
        if source not in first:
            first[source] = translation
            continue
        repeats += 1
        consistent += translation == first[source]
    return EntityConsistency(consistent / repeats if repeats else 1.0, repeats, consistent)


@dataclass(frozen=True)
class TermAccuracy:
    """The share of glossary-term occurrences in the source whose target term was used."""

    score: float
    occurrences: int  # glossary terms found in source lines, counted per occurrence
    matched: int  # of those, with the target term in the corresponding hypothesis line


def _source_pattern(term: str) -> re.Pattern[str]:
    """``term`` as a whole word where it starts or ends with a Latin letter or digit."""
    before = r"(?<![A-Za-z0-9])" if term[:1].isascii() and term[:1].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if term[-1:].isascii() and term[-1:].isalnum() else ""
    return re.compile(before + re.escape(term) + after, re.IGNORECASE)


def term_accuracy(hyp_lines: Sequence[str], src_lines: Sequence[str],
                  glossary: Mapping[str, str]) -> TermAccuracy:
    """How often the glossary's target term is used where its source term occurs.

    Source terms match case-insensitively (as whole words when they are Latin words);
    a line with a source term twice needs its target term twice in the hypothesis line.
    With no occurrences the score is 1.0.
    """
    if len(hyp_lines) != len(src_lines):
        raise ScoringError(f"{len(hyp_lines)} hypothesis lines but {len(src_lines)} source "
                           "lines: term accuracy needs them aligned")
    patterns = [(_source_pattern(src), tgt.casefold())
                for src, tgt in glossary.items() if src.strip() and tgt.strip()]
    occurrences = matched = 0
    for hyp, src in zip(hyp_lines, src_lines, strict=True):
        folded_hyp = hyp.casefold()
        for pattern, target in patterns:
            found = len(pattern.findall(src))
            if found:
                occurrences += found
                matched += min(found, folded_hyp.count(target))
    return TermAccuracy(matched / occurrences if occurrences else 1.0, occurrences, matched)
