"""The token-level record of one model call, as traces, tree nodes and pairs keep it.

Re-tokenising a generated step for training can give other tokens than the model
produced (merges across the prompt boundary, a template that renders a turn differently
from how it was generated), so a step keeps what the model saw and wrote. Backends put
it in an ``AIMessage``'s ``response_metadata`` under three keys (the HF backend always,
the OpenAI-compatible one when asked): ``prompt_token_ids``, ``completion_token_ids`` and
``completion_logprobs``. ``call_tokens`` reads them into one plain dict of a fixed shape
(lists, never None, and the model's name), so that JSONL files of many calls keep one
Arrow type per column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TOKEN_KEYS = ("prompt_token_ids", "completion_token_ids", "completion_logprobs")


def call_tokens(message: Any) -> dict[str, Any] | None:
    """``{"prompt_token_ids", "completion_token_ids", "completion_logprobs", "model"}`` of
    a model answer (a message or its ``response_metadata``), or None when the backend
    recorded no completion token ids."""
    metadata = message if isinstance(message, Mapping) else \
        getattr(message, "response_metadata", None) or {}
    completion = metadata.get("completion_token_ids")
    if completion is None:
        return None
    return {
        "prompt_token_ids": [int(t) for t in metadata.get("prompt_token_ids") or []],
        "completion_token_ids": [int(t) for t in completion],
        "completion_logprobs": [float(p) for p in metadata.get("completion_logprobs") or []],
        "model": str(metadata.get("model_name") or metadata.get("model") or ""),
    }


def with_purpose(purpose: str, message: Any) -> dict[str, Any] | None:
    """``call_tokens`` of an answer, tagged with what the call was for (a trace's entry)."""
    tokens = call_tokens(message)
    return None if tokens is None else {"purpose": purpose, **tokens}
