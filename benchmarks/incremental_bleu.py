"""Rescoring a 40-page document after one page changes: cached page statistics vs sacrebleu.

The scenario is a rollout that rewrites page k of an English-to-Chinese translation and
asks for the document's BLEU and chrF. Ours looks up the 39 unchanged pages' statistics
(by a hash of their lines), computes page k's, adds them and scores the sums. The
baseline is sacrebleu's ``corpus_score`` for BLEU (zh tokenizer) and chrF over all lines,
with metric objects built once. Every rewrite is new text, so page k is never a cache hit;
sacrebleu's tokenizer cache serves both sides alike. The two scores must agree to 1e-9.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import percentile, rounded
from stepwise.scoring import IncrementalScorer, bleu_metric, chrf_metric

# The parallel documents beside the repository (../shared/data), or STEPWISE_SHARED_DATA;
# where neither is there, the WMT24++ document bundled with the LongMT scenario.
DATA = Path(os.environ.get("STEPWISE_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data")
            ) / "wmt24pp-en-zh"
BUNDLED = Path(__file__).resolve().parents[1] / "scenarios" / "longmt" / "data"
TGT_LANG = "zh"
PAGES = 40
LINES_PER_PAGE = 10

Page = tuple[list[str], list[str]]  # (hypothesis lines, reference lines)


def perturb(line: str, seed: int) -> str:
    """A deterministic imperfect translation: every 7th character dropped, a pair swapped."""
    chars = [c for i, c in enumerate(line) if (i + seed) % 7 != 0]
    if len(chars) > 4:
        j = seed % (len(chars) - 1)
        chars[j], chars[j + 1] = chars[j + 1], chars[j]
    return "".join(chars)


def build_document() -> list[Page]:
    """40 pages of 10 reference lines (the corpus's lines, cycled) with perturbed hypotheses."""
    files = sorted(DATA.glob(f"doc*.{TGT_LANG}"))
    if not files:
        files = sorted(BUNDLED.glob(f"doc*.{TGT_LANG}"))
        print(f"incremental_bleu: no doc*.{TGT_LANG} files in {DATA}; using the bundled "
              f"{', '.join(f.name for f in files)}", file=sys.stderr)
    if not files:
        raise SystemExit(f"incremental_bleu: no doc*.{TGT_LANG} files in {DATA} or {BUNDLED}")
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    refs = [lines[i % len(lines)] for i in range(PAGES * LINES_PER_PAGE)]
    hyps = [perturb(line, i) for i, line in enumerate(refs)]
    return [(hyps[p:p + LINES_PER_PAGE], refs[p:p + LINES_PER_PAGE])
            for p in range(0, len(refs), LINES_PER_PAGE)]


def rewrite(page: Page, round_: int) -> Page:
    """Page k's new translation in round ``round_``: text no earlier round produced."""
    hyps, refs = page
    new = [perturb(line, round_ + j) for j, line in enumerate(hyps)]
    new[0] = f"{new[0]}（{round_}）"
    return new, refs


def ours(scorer: IncrementalScorer, document: list[Page]) -> Callable[[int], dict]:
    def rescore(round_: int) -> dict:
        k = round_ % len(document)
        pages = [rewrite(page, round_) if p == k else page for p, page in enumerate(document)]
        return scorer.document_score(scorer.page_stats(h, r) for h, r in pages)

    return rescore


def baseline(document: list[Page]) -> Callable[[int], dict]:
    bleu, chrf = bleu_metric(TGT_LANG), chrf_metric()

    def rescore(round_: int) -> dict:
        k = round_ % len(document)
        pages = [rewrite(page, round_) if p == k else page for p, page in enumerate(document)]
        hyps = [line for h, _ in pages for line in h]
        refs = [[line for _, r in pages for line in r]]
        return {"bleu": bleu.corpus_score(hyps, refs).score,
                "chrf": chrf.corpus_score(hyps, refs).score}

    return rescore


def time_rounds(rescore: Callable[[int], dict], rounds: range) -> tuple[list[float], list[dict]]:
    seconds, scores = [], []
    for round_ in rounds:
        start = time.perf_counter()
        scores.append(rescore(round_))
        seconds.append(time.perf_counter() - start)
    return seconds, scores


def summary(seconds: list[float]) -> dict:
    return {"median_us": rounded(percentile(seconds, 0.5) * 1e6),
            "p90_us": rounded(percentile(seconds, 0.9) * 1e6), "rescorings": len(seconds)}


def run(quick: bool = False) -> dict:
    rounds_per_side = 20 if quick else 200
    block_size = 10 if quick else 25
    document = build_document()
    scorer = IncrementalScorer(TGT_LANG)
    for hyps, refs in document:  # the document as it stood before the rollout
        scorer.page_stats(hyps, refs)
    ours_call, baseline_call = ours(scorer, document), baseline(document)
    time_rounds(ours_call, range(-20, 0))  # warm-up on rewrites never timed
    time_rounds(baseline_call, range(-20, 0))
    misses_before = scorer.misses

    ours_seconds: list[float] = []
    baseline_seconds: list[float] = []
    largest_difference = 0.0
    for block_start in range(0, rounds_per_side, block_size):
        rounds = range(block_start, block_start + block_size)
        pair = [(ours_call, ours_seconds), (baseline_call, baseline_seconds)]
        if (block_start // block_size) % 2:
            pair.reverse()
        results = []
        for call, seconds in pair:
            spent, scores = time_rounds(call, rounds)
            seconds.extend(spent)
            results.append(scores)
        for a, b in zip(*results, strict=True):
            for metric in ("bleu", "chrf"):
                difference = abs(a[metric] - b[metric])
                assert difference <= 1e-9, (metric, a, b)
                largest_difference = max(largest_difference, difference)
    assert scorer.misses - misses_before == rounds_per_side, "a rewritten page hit the cache"

    ours_median = percentile(ours_seconds, 0.5)
    baseline_median = percentile(baseline_seconds, 0.5)
    return {
        "figures": {
            **summary(ours_seconds),
            "speedup": rounded(baseline_median / ours_median),
            "pages": PAGES, "lines": PAGES * LINES_PER_PAGE, "tgt_lang": TGT_LANG,
            "tokenize": scorer.tokenize, "block_size": block_size,
            "max_score_difference": largest_difference,
        },
        "baseline": {
            "what": "sacrebleu BLEU(tokenize='zh').corpus_score + CHRF().corpus_score over all "
                    "400 lines, metric objects built once",
            **summary(baseline_seconds),
        },
        "ratio": {"value": rounded(ours_median / baseline_median),
                  "ratio_of": "median µs per rescoring, incremental over sacrebleu"},
    }
