"""DPO on a CPU with --top-layers: seconds per step with the frozen layers kept per pair.

The same pairs (the simulated world's, best-path pairs of 5-sentence pages) trained twice
for the same steps, more than one pass over them: ours keeps the frozen layers' output per
pair (``keep_frozen``, the default), the baseline runs those layers on every pass. Both
runs must log the same losses step for step (the kept output is the computed one). With
SmolLM2 installed (``stepwise models get smollm2``) the model is SmolLM2 with its top 8
of 30 layers trained; else (and with ``--quick``) the tiny model as ``hf:`` with 1 of 2.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks import rounded
from stepwise.threads import plan_threads, usable_cores

PAIRS = 8  # at most: the world's documents may give fewer
STEPS = 4  # of 4 pairs: at least two passes over them


def _pairs(root: Path) -> tuple[Path, int]:
    """Best-path pairs of simulated documents, the first ``PAIRS`` of them."""
    from typer.testing import CliRunner

    from stepwise.cli import app

    runner = CliRunner()
    for args in (["sim", "make", "--world", "translation", "--docs", "3", "--out",
                  str(root / "synth")],
                 ["explore", str(root / "synth" / "dataset.jsonl"), "-m", "sim:translator",
                  "--page-sentences", "5", "--simulations", "24", "--out", str(root / "run")]):
        done = runner.invoke(app, args)
        if done.exit_code != 0:
            raise RuntimeError(f"frozen_trunk: {' '.join(args[:2])} failed: {done.output}")
    lines = (root / "run" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()[:PAIRS]
    path = root / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines)


def _model(quick: bool) -> tuple[str, int]:
    """The model to train and how many top layers learn."""
    from stepwise.llm.named_models import is_cached, model_dir
    from stepwise.llm.tiny import tiny_model_path

    if not quick and is_cached("smollm2"):
        return f"hf:{model_dir('smollm2')}", 8
    return f"hf:{tiny_model_path(0)}", 1


def run(quick: bool = False) -> dict:
    import torch

    from stepwise.train.dpo import DPOSettings, train_dpo

    model, top = _model(quick)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(plan_threads(1, 1, cores=usable_cores()).threads)
    runs = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pairs, count = _pairs(root)
            for name, keep in (("baseline", False), ("ours", True)):
                settings = DPOSettings(max_steps=STEPS, eval_frac=0.0, top_layers=top,
                                       learning_rate=3e-5, keep_frozen=keep, device="cpu")
                result = train_dpo(pairs, model, root / name, settings)
                logged = [json.loads(line) for line in
                          (root / name / "metrics.jsonl").read_text().splitlines()]
                losses = [row["loss"] for row in logged if "loss" in row]
                runs[name] = {"result": result, "losses": losses}
    finally:
        torch.set_num_threads(threads_before)
    if runs["ours"]["losses"] != runs["baseline"]["losses"]:
        raise AssertionError(f"frozen_trunk: losses differ: {runs['ours']['losses']} against "
                             f"{runs['baseline']['losses']}")

    def figures(name: str) -> dict:
        result = runs[name]["result"]
        return {"seconds_per_step": rounded(result.seconds / result.steps),
                "prepare_seconds": rounded(result.prepare_seconds),
                "peak_memory_gb": result.peak_memory_gb, "frozen_trunk": result.frozen_trunk}

    ours, baseline = figures("ours"), figures("baseline")
    return {"figures": {"model": model.rsplit("/", 1)[-1], "top_layers": top, "pairs": count,
                        "steps": STEPS, "batch_size": 4, **ours,
                        "same_losses": True, "losses": runs["ours"]["losses"]},
            "baseline": baseline,
            "ratio": {"step_speedup": rounded(baseline["seconds_per_step"]
                                              / ours["seconds_per_step"]),
                      "prepare_speedup": rounded(baseline["prepare_seconds"]
                                                 / ours["prepare_seconds"])}}
