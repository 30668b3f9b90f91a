"""How the command line words a count (``stepwise.wording``, where library code shares it)."""

from __future__ import annotations

from stepwise.wording import agreeing, plural

__all__ = ["agreeing", "plural"]
