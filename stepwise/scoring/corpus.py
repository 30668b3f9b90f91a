"""BLEU and chrF over lines and over documents, through sacrebleu, from raw text.

These are the reference implementations: every score here is sacrebleu's own
``corpus_score``. ``stepwise.scoring.incremental`` reaches the same numbers from cached
statistics; tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from stepwise.scoring.errors import ScoringError
from stepwise.scoring.languages import line_joiner, tokenizer_for


def bleu_metric(tgt_lang: str) -> BLEU:
    """sacrebleu's BLEU with default settings and the tokenizer for ``tgt_lang``."""
    return BLEU(tokenize=tokenizer_for(tgt_lang))


def chrf_metric() -> CHRF:
    """sacrebleu's chrF (character 6-grams, beta 2, no word n-grams)."""
    return CHRF()


def check_aligned(hyps: Sequence[str], refs: Sequence[str], what: str = "lines") -> None:
    """Hypotheses and references must pair up one to one, and there must be some."""
    if len(hyps) != len(refs):
        raise ScoringError(f"{len(hyps)} hypothesis {what} but {len(refs)} reference {what}")
    if not hyps:
        raise ScoringError(f"no {what} to score")


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str) -> float:
    """Corpus BLEU (0-100) of hypothesis lines against one reference line each."""
    metric = bleu_metric(tgt_lang)
    check_aligned(hyps, refs)
    return metric.corpus_score(list(hyps), [list(refs)]).score


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus chrF (0-100) of hypothesis lines against one reference line each."""
    check_aligned(hyps, refs)
    return chrf_metric().corpus_score(list(hyps), [list(refs)]).score


def join_document(lines: Sequence[str], tgt_lang: str) -> str:
    """A document's lines as one segment: with spaces, or without for zh, ja and ko."""
    return line_joiner(tgt_lang).join(line.strip() for line in lines)


def document_bleu(docs_hyp: Sequence[Sequence[str]], docs_ref: Sequence[Sequence[str]],
                  tgt_lang: str) -> float:
    """d-BLEU: each document joined into one segment, then corpus BLEU over documents.

    Documents must pair up, but a document's hypothesis and reference may have
    different numbers of lines: sentence alignment is not needed at this level.
    """
    check_aligned(docs_hyp, docs_ref, what="documents")
    hyps = [join_document(doc, tgt_lang) for doc in docs_hyp]
    refs = [join_document(doc, tgt_lang) for doc in docs_ref]
    return bleu_metric(tgt_lang).corpus_score(hyps, [refs]).score
