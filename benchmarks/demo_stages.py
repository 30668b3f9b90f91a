"""`stepwise demo` wall time per stage, quiet and beside a competing CPU-bound process.

The demo runs twice in a child process, on the same arguments: on a quiet machine, then
beside one process that spins on a core (``thread_budget.competitors``). Its
``stages.json`` gives each stage's wall and CPU seconds (the demo process and the children
it waited for). A stage that only lost CPU to the competitor is slower by the share of CPU
it lost: its CPU seconds per wall second fall, and its slowdown is at most their quiet /
competing ratio ("allowed"). A stage slower than that did more work beside the competitor
(threads fighting over the cores, spinning pools): ``excess`` above 1 says by how much.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import rounded
from benchmarks.thread_budget import competitors
from stepwise.cli.demo import STAGES_FILE


def demo_stages(folder: Path, quick: bool) -> dict:
    """The stages.json of one ``stepwise demo`` run in a child process."""
    sizes = ["--docs", "1", "--simulations", "8", "--max-steps", "4"] if quick else []
    subprocess.run([sys.executable, "-m", "stepwise", "--quiet", "demo", "--out", str(folder),
                    *sizes], check=True, capture_output=True, text=True,
                   env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    return json.loads((folder / STAGES_FILE).read_text(encoding="utf-8"))


def compare(quiet: dict, loaded: dict) -> list[dict]:
    rows = []
    for alone, beside in zip(quiet["stages"], loaded["stages"], strict=True):
        slowdown = beside["seconds"] / alone["seconds"]
        share_quiet = alone["cpu_seconds"] / alone["seconds"]
        share_loaded = beside["cpu_seconds"] / beside["seconds"]
        allowed = share_quiet / share_loaded if share_loaded > 0 else float("inf")
        rows.append({
            "stage": alone["stage"], "title": alone["title"],
            "quiet_s": rounded(alone["seconds"]), "competing_s": rounded(beside["seconds"]),
            "slowdown": rounded(slowdown, 3),
            "cpu_share_quiet": rounded(share_quiet, 3),
            "cpu_share_competing": rounded(share_loaded, 3),
            "cpu_share_lost": rounded(1 - share_loaded / share_quiet, 3) if share_quiet else 0,
            "allowed_slowdown": rounded(allowed, 3),
            "excess": rounded(slowdown / allowed, 3),
        })
    return rows


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        quiet = demo_stages(Path(folder) / "quiet", quick)
        with competitors(1):
            loaded = demo_stages(Path(folder) / "competing", quick)
    rows = compare(quiet, loaded)
    worst = max(rows, key=lambda row: row["excess"])
    return {
        "figures": {"stages": rows, "quiet_total_s": rounded(quiet["total"]["seconds"]),
                    "competing_total_s": rounded(loaded["total"]["seconds"]),
                    "worst_stage": worst["stage"], "cores": os.cpu_count()},
        "baseline": {"what": "the same demo on a quiet machine, run just before",
                     "stages_s": {row["stage"]: row["quiet_s"] for row in rows}},
        "ratio": worst["excess"],  # <= 1: no stage slower than the CPU share it lost
    }
