"""``stepwise demo``: the whole loop, offline, on the embedded defaults, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import app, cli_errors, out

DEMO_POLICIES = "none,all,auto,oracle"


def _section(number: int, title: str) -> None:
    out.rule(f"[bold]{number}. {title}[/bold]", align="left")


@app.command()
@cli_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where everything goes.")] = Path("demo"),
    docs: Annotated[int, typer.Option(help="Synthetic documents.")] = 4,
    simulations: Annotated[int, typer.Option(help="MCTS iterations per document.")] = 24,
    max_steps: Annotated[int, typer.Option(help="DPO steps on the tiny model.")] = 30,
) -> None:
    """Run the whole loop offline: a simulated world, the seed's compare table, MCTS
    exploration, step-level pairs, DPO on a tiny model, and the trained model back in
    the agent as its module policy, with a tree picture and the training curves.

    Everything here is a simulation: the documents are in a synthetic language, the
    translator is a simulated one, and the tiny model has random weights. The figures
    show that the parts work together, not translation quality.
    """
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
