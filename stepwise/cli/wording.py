"""How the command line words a count: ``1 page``, ``2 pages``, never ``1 pages``."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless the count is one (``many`` where the
    plural is not ``word + "s"``: ``plural(n, "memory", "memories")``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"
