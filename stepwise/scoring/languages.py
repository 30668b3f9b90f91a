"""What a target language decides for scoring: BLEU's tokenizer and how lines join.

sacrebleu's default tokenizer (13a) splits on spaces and punctuation, so for languages
written without spaces a whole sentence would be one "word". Chinese has its own
tokenizer; Japanese and Korean would want MeCab, which needs downloads, so they (and
Thai) fall back to characters, which works offline and is a common choice.
"""

from __future__ import annotations

from stepwise.documents.language_codes import base_language as language_subtag
from stepwise.errors import StepwiseError
from stepwise.scoring.errors import ScoringError

_TOKENIZERS = {"zh": "zh", "ja": "char", "ko": "char", "th": "char"}
DEFAULT_TOKENIZER = "13a"

# Documents in these languages are joined without a space between sentences.
_JOINED_WITHOUT_SPACE = {"zh", "ja", "ko"}


def base_language(code: str) -> str:
    """The language subtag of a code ("zh" for "zh-CN"); a malformed code is a ScoringError."""
    try:
        return language_subtag(code)
    except StepwiseError as exc:
        raise ScoringError(str(exc)) from None


def tokenizer_for(tgt_lang: str) -> str:
    """The sacrebleu tokenizer name for BLEU on text in ``tgt_lang``."""
    return _TOKENIZERS.get(base_language(tgt_lang), DEFAULT_TOKENIZER)


def line_joiner(tgt_lang: str) -> str:
    """What goes between two sentences when a document becomes one segment (d-BLEU)."""
    return "" if base_language(tgt_lang) in _JOINED_WITHOUT_SPACE else " "
