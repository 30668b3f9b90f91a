"""What the simulated translation world knows of a document: the exact best module sets.

The world builds its documents, so it can split each English reference line into the
sentences of its ``qsy`` source line (marked forms never move a sentence end, see
``world``), which makes the page reward sentence-level: a page is scored on exactly the
sentences it translated. With that reward and a translator that costs nothing
(``sim:translator``), the best module sets at a state are found by trying all eight
(``stepwise.agents.longmt.optima``): an exact optimum of a simulation, with ties.

The marker heuristic (``language.marker_modules``: call a module for each kind of marked
form on the page) stays as a baseline policy, ``markers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stepwise.agents.longmt.optima import best_sets
from stepwise.agents.longmt.page_rewards import PageRewards
from stepwise.documents import split_sentences
from stepwise.documents.pages import Document
from stepwise.errors import StepwiseError
from stepwise.scoring import IncrementalScorer
from stepwise.sim.translation.language import LANGUAGE, decode, encode, marker_modules
from stepwise.sim.translation.world import TARGET


def _sentences(line: str) -> list[str]:
    return [s for s in split_sentences(line, LANGUAGE) if s.strip()]


def sentence_references(src_lines: Sequence[str], ref_lines: Sequence[str]
                        ) -> list[list[str] | None]:
    """Per line, the English reference split into the source line's sentences, or None.

    The reference is split where the agent's splitter splits its ``qsy`` encoding (the
    source without its marks), so the parts line up with the source's sentences; a line
    whose counts differ (not made by the world) gets None.
    """
    split: list[list[str] | None] = []
    for src, ref in zip(src_lines, ref_lines, strict=True):
        parts = [decode(s).strip() for s in _sentences(encode(ref))]
        split.append(parts if len(parts) == len(_sentences(src)) else None)
    return split


class WorldOracle:
    """One simulated document's oracle: its sentence-level reward and exact best sets."""

    def __init__(self, ref_lines: Sequence[str], tgt: str = TARGET) -> None:
        self.ref_lines = list(ref_lines)
        self.tgt = tgt
        self._rewards: tuple[Document, PageRewards] | None = None

    def rewards(self, document: Document,
                scorer: IncrementalScorer | None = None) -> PageRewards:
        """The page reward over sentences, for ``document`` (kept for the last document)."""
        if self._rewards is not None and self._rewards[0] is document:
            return self._rewards[1]
        if len(self.ref_lines) != len(document.lines):
            raise StepwiseError(f"the reference has {len(self.ref_lines)} lines for "
                             f"{len(document.lines)} source lines")
        rewards = PageRewards(document, self.ref_lines, self.tgt, scorer=scorer,
                              sentence_refs=sentence_references(document.lines, self.ref_lines))
        self._rewards = (document, rewards)
        return rewards

    def best_sets(self, steps: Any, state: dict[str, Any]) -> frozenset[tuple[str, ...]]:
        """The exact best module sets at ``state``, by translating the page with all eight."""
        return best_sets(steps, state, self.rewards(steps.document))

    def marker_modules(self, lines: Sequence[str]) -> list[str]:
        return marker_modules(lines)
