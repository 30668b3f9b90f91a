"""Which earlier sentences matter for a query: BM25 over source and translation together.

``view_pages`` returns sentences, not whole pages, so that re-reading the past adds a few
relevant lines of context instead of thousands of tokens. BM25 (rank-bm25's Okapi) on
words for space-separated scripts and on single characters for Chinese and Japanese: it
needs no model, and a rare shared word (a name, a term) is exactly what makes an earlier
sentence worth seeing again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rank_bm25 import BM25Okapi

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lowercased words, and CJK characters one by one."""
    return [token.lower() for token in _TOKEN.findall(text)]


def relevant_sentences(pairs: Sequence[tuple[int, int, str, str]], query: str,
                       k: int) -> list[tuple[int, int, str, str]]:
    """The ``k`` pairs (page, line, source, translation) that best match ``query``.

    Only pairs that share something with the query count; the result keeps document
    order, so what the model reads runs forward like the document did.
    """
    wanted = tokens(query)
    if not pairs or not wanted or k < 1:
        return []
    corpus = [tokens(f"{src} {tgt}") or ["\0"] for _, _, src, tgt in pairs]
    scores = BM25Okapi(corpus).get_scores(wanted)
    shared = [i for i, doc in enumerate(corpus) if set(wanted) & set(doc)]
    best = sorted(shared, key=lambda i: (-scores[i], i))[:k]
    return [pairs[i] for i in sorted(best)]
