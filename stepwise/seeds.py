"""Seeds derived from names, the same in every process (never Python's salted ``hash``)."""

from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any, bits: int = 64) -> int:
    """A ``bits``-bit seed from any parts: (seed, task, node path, sample index), ..."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:bits // 8], "big")
