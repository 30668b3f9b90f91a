"""Translation quality scores: BLEU, d-BLEU, chrF, COMET, entity and term consistency.

Scores are sufficient statistics: BLEU and chrF of a document are combined from cached
per-page statistics (``IncrementalScorer``), so rescoring after one page changes costs
one page. ``corpus_bleu``/``corpus_chrf`` are sacrebleu on raw text, the reference the
incremental scores are held equal to. COMET runs in its own environment (``CometScorer``).
"""

from stepwise.scoring.comet import CometResult, CometScorer
from stepwise.scoring.corpus import (
    bleu_metric,
    chrf_metric,
    corpus_bleu,
    corpus_chrf,
    document_bleu,
    join_document,
)
from stepwise.scoring.entities import (
    EntityConsistency,
    TermAccuracy,
    entity_consistency,
    term_accuracy,
)
from stepwise.scoring.errors import ScoringError
from stepwise.scoring.incremental import (
    IncrementalScorer,
    SegmentStats,
    bleu_from_stats,
    chrf_from_stats,
)
from stepwise.scoring.languages import line_joiner, tokenizer_for

__all__ = [
    "CometResult",
    "CometScorer",
    "EntityConsistency",
    "IncrementalScorer",
    "ScoringError",
    "SegmentStats",
    "TermAccuracy",
    "bleu_from_stats",
    "bleu_metric",
    "chrf_from_stats",
    "chrf_metric",
    "corpus_bleu",
    "corpus_chrf",
    "document_bleu",
    "entity_consistency",
    "join_document",
    "line_joiner",
    "term_accuracy",
    "tokenizer_for",
]
