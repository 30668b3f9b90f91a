"""Document scores from cached per-page statistics, not recomputed from text.

BLEU and chrF are functions of sums of per-segment counts (n-gram matches and totals,
lengths). A rollout that rewrites one page of a 40-page document changes one page's
counts; the other 39 are looked up, the sums added, and the score computed from them.
The counts and the final formulas are sacrebleu's own (``_extract_corpus_statistics``
and ``_compute_score_from_stats``), so the result equals ``corpus_score`` on all lines.

One scorer may be shared by the threads of a parallel search: sacrebleu reads a page's
references from state on the metric object, so each thread scores with its own metric
objects, and the caches take a lock for each lookup and store.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stepwise.scoring.corpus import bleu_metric, chrf_metric
from stepwise.scoring.errors import ScoringError

_BLEU = bleu_metric("en")  # the tokenizer plays no part in scoring from statistics
_CHRF = chrf_metric()
_BLEU_SIZE = 2 + 2 * _BLEU.max_ngram_order  # hyp length, ref length, matches, totals
_CHRF_SIZE = 3 * (_CHRF.char_order + _CHRF.word_order)  # hyp, ref, match per order


def _sum(rows: Iterable[Sequence[int]], size: int) -> tuple[int, ...]:
    total = [0] * size
    for row in rows:
        for i, value in enumerate(row):
            total[i] += value
    return tuple(total)


@dataclass(frozen=True, slots=True)
class SegmentStats:
    """Sufficient statistics of some segments (a page, a document) for BLEU and chrF.

    ``bleu`` and ``chrf`` are sacrebleu's per-segment count vectors, summed; adding two
    ``SegmentStats`` is the statistics of both parts, and ``sum(pages)`` works.
    """

    bleu: tuple[int, ...]
    chrf: tuple[int, ...]
    segments: int

    @classmethod
    def empty(cls) -> SegmentStats:
        return cls((0,) * _BLEU_SIZE, (0,) * _CHRF_SIZE, 0)

    def __add__(self, other: SegmentStats) -> SegmentStats:
        if not isinstance(other, SegmentStats):
            return NotImplemented
        return SegmentStats(tuple(a + b for a, b in zip(self.bleu, other.bleu, strict=True)),
                            tuple(a + b for a, b in zip(self.chrf, other.chrf, strict=True)),
                            self.segments + other.segments)

    def __radd__(self, other: object) -> SegmentStats:
        if other == 0:  # the start value of sum()
            return self
        return NotImplemented


def bleu_from_stats(stats: SegmentStats) -> float:
    """BLEU (0-100) from summed statistics, by sacrebleu's formula and default smoothing."""
    return _BLEU._compute_score_from_stats(list(stats.bleu)).score


def chrf_from_stats(stats: SegmentStats) -> float:
    """chrF (0-100) from summed statistics, by sacrebleu's formula."""
    return _CHRF._compute_score_from_stats(list(stats.chrf)).score


def _lines_key(*parts: Sequence[str]) -> bytes:
    text = json.dumps([list(lines) for lines in parts], ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class _LRU(OrderedDict):
    """A dict that forgets its least recently used entry beyond ``size`` entries.

    Threads may share one: a lookup that finds an entry and marks it recent must not
    see another thread evict it in between, so each call holds the cache's lock. It
    counts its hits and misses under the same lock.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def lookup(self, key: bytes) -> Any:
        with self._lock:
            value = self.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self.move_to_end(key)
            return value

    def store(self, key: bytes, value: Any) -> None:
        with self._lock:
            self[key] = value
            if len(self) > self.size:
                self.popitem(last=False)


class _Metrics(threading.local):
    """This thread's BLEU and chrF objects.

    ``IncrementalScorer._compute`` hands sacrebleu a page's references by setting the
    metric's ``_ref_cache``; with one metric shared, another thread could set its own
    page's references between that and the read, and a page would be scored against
    them. A metric per thread keeps the handover private to the thread.
    """

    def __init__(self, tgt_lang: str) -> None:
        self.bleu = bleu_metric(tgt_lang)
        self.chrf = chrf_metric()


class IncrementalScorer:
    """Per-page statistics for one target language, cached by a hash of the page's lines.

    Two caches: page statistics by (hypothesis, reference) lines, so unchanged pages cost
    a lookup; and reference n-grams by reference lines, so a rewritten page costs only
    its hypothesis side. Example::

        scorer = IncrementalScorer("zh")
        pages = [scorer.page_stats(hyp, ref) for hyp, ref in zip(hyp_pages, ref_pages)]
        scorer.document_score(pages)  # {"bleu": ..., "chrf": ...}
    """

    def __init__(self, tgt_lang: str, max_cached_pages: int = 4096,
                 max_cached_references: int = 512) -> None:
        self.tgt_lang = tgt_lang
        self._metrics = _Metrics(tgt_lang)
        self._pages = _LRU(max_cached_pages)
        self._references = _LRU(max_cached_references)

    @property
    def hits(self) -> int:
        """Pages whose statistics came from the cache."""
        return self._pages.hits

    @property
    def misses(self) -> int:
        """Pages whose statistics were computed."""
        return self._pages.misses

    @property
    def tokenize(self) -> str:
        """The sacrebleu tokenizer BLEU uses for this language."""
        return self._metrics.bleu.tokenizer.signature()

    def page_stats(self, hyp_lines: Sequence[str], ref_lines: Sequence[str]) -> SegmentStats:
        """The statistics of one page of aligned lines, computed once per distinct page."""
        if len(hyp_lines) != len(ref_lines):
            raise ScoringError(f"a page has {len(hyp_lines)} hypothesis lines but "
                               f"{len(ref_lines)} reference lines")
        key = _lines_key(hyp_lines, ref_lines)
        stats = self._pages.lookup(key)
        if stats is not None:
            return stats
        stats = self._compute(list(hyp_lines), list(ref_lines))
        self._pages.store(key, stats)
        return stats

    def _compute(self, hyp_lines: list[str], ref_lines: list[str]) -> SegmentStats:
        if not hyp_lines:
            return SegmentStats.empty()
        bleu, chrf = self._metrics.bleu, self._metrics.chrf
        ref_key = _lines_key(ref_lines)
        references = self._references.lookup(ref_key)
        if references is None:
            references = (bleu._cache_references([ref_lines]), chrf._cache_references([ref_lines]))
            self._references.store(ref_key, references)
        # With references=None, sacrebleu reads them from the metric's _ref_cache: this
        # thread's metric, so no other thread's page can take their place.
        bleu._ref_cache, chrf._ref_cache = references
        bleu_rows = bleu._extract_corpus_statistics(hyp_lines, None)
        chrf_rows = chrf._extract_corpus_statistics(hyp_lines, None)
        return SegmentStats(_sum(bleu_rows, _BLEU_SIZE), _sum(chrf_rows, _CHRF_SIZE),
                            len(hyp_lines))

    def document_score(self, pages: Iterable[SegmentStats]) -> dict[str, float]:
        """Corpus BLEU and chrF over all lines of the pages, from their statistics."""
        total = sum(pages, SegmentStats.empty())
        return {"bleu": bleu_from_stats(total), "chrf": chrf_from_stats(total)}
