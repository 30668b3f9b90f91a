"""Counting think tokens without a tokenizer download.

A think tool that calls a model uses the model's own count (``usage_metadata``); text
with no count behind it (the plain think tool's thought) is estimated by word pieces,
which lands within ~20% of BPE counts for English and is the same on every machine.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage

WORD_PIECE = re.compile(r"\w{1,6}|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """Word pieces of at most six characters, punctuation one each."""
    return len(WORD_PIECE.findall(text))


def output_tokens(message: AIMessage) -> int:
    """What the model reports it generated, or the estimate when it reports nothing."""
    usage = message.usage_metadata
    if usage and usage.get("output_tokens"):
        return int(usage["output_tokens"])
    return estimate_tokens(message.text)
