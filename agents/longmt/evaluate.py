"""Scoring LongMT runs: per document and per policy, the seed's compare table.

Line-level scores (BLEU, chrF) need the reference to have as many lines as the source;
when a reference does not, that document is scored at document level only (d-BLEU) and
the row says so (``unaligned_refs``). Cost columns come from the step traces: context
tokens the modules added, module calls, and the model's tokens, all per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stepwise.scoring import corpus_bleu, corpus_chrf, document_bleu

METRICS = ("bleu", "d_bleu", "chrf", "context_tokens", "module_calls", "tokens")
# How model decisions were made (``decision_counts``), summed over a policy's documents.
DECISION_COUNTS = ("decisions_by_tool_call", "decisions_by_text", "turns_with_tools",
                   "tool_calls")


@dataclass
class DocOutcome:
    """What scoring needs of one translated document (a fresh run or one read back)."""

    doc_id: str
    tgt: str
    lines: list[str]
    totals: dict[str, Any]  # TranslationResult.totals()
    ref: list[str] | None = None


def document_scores(doc: DocOutcome) -> dict[str, Any]:
    """One document's scores (none without a reference)."""
    if doc.ref is None:
        return {}
    scores: dict[str, Any] = {"d_bleu": document_bleu([doc.lines], [doc.ref], doc.tgt)}
    if len(doc.ref) == len(doc.lines):
        scores["bleu"] = corpus_bleu(doc.lines, doc.ref, doc.tgt)
        scores["chrf"] = corpus_chrf(doc.lines, doc.ref)
    else:
        scores["unaligned_ref"] = (f"{len(doc.ref)} reference lines for {len(doc.lines)} "
                                   "source lines: scored at document level only")
    return scores


def policy_scores(docs: Sequence[DocOutcome]) -> dict[str, Any]:
    """One row of the compare table: corpus scores over every document of one policy."""
    pages = sum(d.totals["pages"] for d in docs) or 1
    row: dict[str, Any] = {
        "context_tokens": sum(d.totals["context_tokens"] for d in docs) / pages,
        "module_calls": sum(d.totals["module_calls"] for d in docs) / pages,
        "tokens": sum(d.totals["tokens_in"] + d.totals["tokens_out"] for d in docs) / pages,
        "pages": pages,
        "documents": len(docs),
        "fallbacks": sum(d.totals.get("fallbacks", 0) for d in docs),
    }
    for key in DECISION_COUNTS:  # only where a model decided
        if any(key in d.totals for d in docs):
            row[key] = sum(d.totals.get(key, 0) for d in docs)
    scored = [d for d in docs if d.ref is not None]
    if scored:
        row["d_bleu"] = document_bleu([d.lines for d in scored], [d.ref for d in scored],
                                      scored[0].tgt)
        aligned = [d for d in scored if len(d.ref) == len(d.lines)]
        if aligned:
            hyps = [line for d in aligned for line in d.lines]
            refs = [line for d in aligned for line in d.ref]
            row["bleu"] = corpus_bleu(hyps, refs, aligned[0].tgt)
            row["chrf"] = corpus_chrf(hyps, refs)
        if len(aligned) < len(scored):
            row["unaligned_refs"] = len(scored) - len(aligned)
    return row
