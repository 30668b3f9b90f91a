"""A page's reward that sees every sentence the page translated.

A document line may hold several sentences, and a page break may fall inside a line. A
reward that gives such a line to one page (the one holding its last sentence) leaves the
other page's part of the line unscored, so a module choice that changes only that part
changes no reward. Here a page's reward is BLEU over *scoring units* that cover all its
sentences:

- a sentence, where a sentence-level reference is known (the synthetic world builds its
  documents, so it knows them): the unit belongs to the page that translated it;
- otherwise a whole line: its statistics are shared by every page that holds one of its
  sentences, so each of them sees its whole effect on the line (and the other pages' part
  of the line, which it cannot change, as a constant).

Before a later page is translated, a shared line is scored on the part translated so far.
The document score stays corpus BLEU over lines (``LongMTEnvironment.score``); these
units are for rewards only, so a shared line counts once per page it spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stepwise.documents.pages import Document
from stepwise.scoring import IncrementalScorer, bleu_from_stats
from stepwise.scoring.incremental import SegmentStats
from stepwise.scoring.languages import line_joiner

Position = tuple[int, int]  # (page, index among the page's non-blank sentences)


@dataclass(frozen=True)
class ScoringUnit:
    """One reference segment and the translated sentences, in order, that answer it."""

    positions: tuple[Position, ...]
    ref: str


def sentence_positions(document: Document) -> list[list[Position]]:
    """Per document line, where its non-blank sentences are translated."""
    positions: list[list[Position]] = [[] for _ in document.lines]
    for page in document.pages:
        sentences = [s for s in page.sentences if s.text.strip()]
        for index, sentence in enumerate(sentences):
            positions[sentence.line].append((page.number, index))
    return positions


class PageRewards:
    """Per-page statistics over units that cover every sentence of the page.

    ``sentence_refs`` (optional): per document line, its reference split into that line's
    non-blank sentences, or None where no such split is known; a line whose split has the
    wrong number of parts is scored as a whole line.
    """

    def __init__(self, document: Document, ref_lines: Sequence[str], tgt: str, *,
                 sentence_refs: Sequence[Sequence[str] | None] | None = None,
                 scorer: IncrementalScorer | None = None) -> None:
        self.document = document
        self.scorer = scorer or IncrementalScorer(tgt)
        self.joiner = line_joiner(tgt)
        self.units: list[list[ScoringUnit]] = [[] for _ in document.pages]
        self.sentence_units = 0
        self.shared_lines = 0
        for line, positions in enumerate(sentence_positions(document)):
            split = sentence_refs[line] if sentence_refs is not None else None
            if split is not None and len(split) == len(positions) and positions:
                for position, ref in zip(positions, split, strict=True):
                    self.units[position[0]].append(ScoringUnit((position,), ref))
                self.sentence_units += len(positions)
                continue
            unit = ScoringUnit(tuple(positions), ref_lines[line])
            pages = sorted({page for page, _ in positions}) or [len(self.units) - 1]
            for page in pages:  # a line without sentences goes with the last page
                self.units[page].append(unit)
            self.shared_lines += len(pages) > 1

    def _hypothesis(self, unit: ScoringUnit, translations: Sequence[Sequence[str]]) -> str:
        return self.joiner.join(translations[page][index] for page, index in unit.positions
                                if page < len(translations))

    def page_stats(self, page: int, translations: Sequence[Sequence[str]]) -> SegmentStats:
        """Page ``page``'s statistics, given the sentence translations of pages 0..k (k >= page)."""
        units = self.units[page]
        return self.scorer.page_stats([self._hypothesis(u, translations) for u in units],
                                      [u.ref for u in units])

    def stats(self, translations: Sequence[Sequence[str]]) -> list[SegmentStats]:
        """The statistics of every page translated so far."""
        return [self.page_stats(page, translations) for page in range(len(translations))]

    def reward(self, page: int, translations: Sequence[Sequence[str]]) -> float:
        """Page ``page``'s BLEU over its units."""
        return bleu_from_stats(self.page_stats(page, translations))
