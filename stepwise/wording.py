"""How stepwise words a count: ``1 page``, ``2 pages``, never ``1 pages``.

Here rather than in the command line's modules, so that library code that writes lines for
people (a run's metrics, a warning) words its counts the same way.
"""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless the count is one (``many`` where the
    plural is not ``word + "s"``: ``plural(n, "memory", "memories")``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def agreeing(count: int, one: str, many: str) -> str:
    """The verb for a subject of ``count`` things: ``agreeing(n, "fails", "fail")``."""
    return one if count == 1 else many
