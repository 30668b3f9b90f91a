"""Benchmarks for stepwise, each measured against a baseline in the same run.

Run ``python -m benchmarks`` from the repository root; ``--help`` lists them. Every
benchmark prints one JSON line with our figures, the baseline's figures and their ratio,
so a number is never read without the thing it should be compared with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (0.5 is the median), linearly interpolated."""
    if not values:
        raise ValueError("percentile of no values")
    return float(numpy.percentile(values, fraction * 100))


def rounded(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures, for readable JSON."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
