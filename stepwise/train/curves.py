"""Training curves from metrics.jsonl as one PNG: where people would rather look than read."""

from __future__ import annotations

import io
from pathlib import Path

from stepwise.files import write_atomic
from stepwise.jsonl import read_jsonl

PANELS = (("loss", ("loss",)), ("reward accuracy", ("reward_accuracy",)),
          ("reward margin", ("reward_margin",)),
          ("log-probs", ("logps_chosen", "logps_rejected")))


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics file (none before the first step is logged). It is appended
    as training runs, so a last line cut off by a kill is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    return [row for _, row in read_jsonl(path, on_torn_last_line=lambda number: None)]


def write_curves(metrics: str | Path, png: str | Path, title: str = "DPO training") -> Path | None:
    """Loss, reward accuracy, reward margin and chosen/rejected log-probs against step."""
    rows = read_metrics(metrics)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for axis, (label, columns) in zip(axes.flat, PANELS, strict=True):
        for column in columns:
            points = [(r["step"], r[column]) for r in rows if column in r]
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(steps, values, marker="." if len(points) < 40 else None,
                          label=column.replace("logps_", ""))
        axis.set_title(label)
        axis.grid(alpha=0.3)
        if len(columns) > 1:
            axis.legend()
    for axis in axes[1]:
        axis.set_xlabel("step")
    figure.suptitle(title)
    figure.tight_layout()
    png = Path(png)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_atomic(png, buffer.getvalue())
    return png
