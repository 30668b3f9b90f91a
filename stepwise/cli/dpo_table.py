"""The DPO figures before and after training, as ``train dpo`` and ``demo`` print them.

TRL evaluates a set of pairs a batch at a time and reports the mean of the batches'
figures, so a reward accuracy over several batches is a mean of shares, not the share of
the pairs; a column says so when it is.
"""

from __future__ import annotations

import math
from typing import Any

from stepwise.cli.tables import ReadableTable, number
from stepwise.wording import plural

FIGURES = ("reward_accuracy", "reward_margin", "logps_chosen", "logps_rejected", "loss")


def fit_batches(pairs: int, batch_size: int) -> int:
    """How many batches re-score the training pairs after training (``batch_size`` pairs at
    a time, ``stepwise.train.dpo.FIT_SAMPLE`` at most)."""
    from stepwise.train.dpo import FIT_SAMPLE

    return math.ceil(min(pairs, FIT_SAMPLE) / batch_size) if pairs else 0


def _header(header: str, batches: int) -> str:
    return header + (f"\n(mean of {batches} batches)" if batches > 1 else "")


def training_table(result: dict[str, Any]) -> ReadableTable:
    """train.json's figures (``TrainResult.as_dict()``): held out before and after, and the
    training pairs' fit after."""
    batch = result["settings"]["batch_size"]
    train, held = result["train_pairs"], result["eval_pairs"]
    columns = (("held-out before", "before", math.ceil(held / batch)),
               ("held-out after", "after", math.ceil(held / batch)),
               ("training pairs after", "train_fit", fit_batches(train, batch)))
    rows = [(name.replace("_", " "),
             *("-" if (c := result[key].get(name)) is None else f"{c:.3f}"
               for _, key, _ in columns)) for name in FIGURES]
    title = (f"DPO on {plural(train, 'training pair')}, {held} held out "
             f"({plural(result['steps'], 'step')}, {result['device']})")
    return ReadableTable(["figure", *(number(_header(header, batches))
                                      for header, _, batches in columns)], rows, title=title)
