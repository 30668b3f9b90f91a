"""``stepwise sim``: make the datasets of the simulated worlds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stepwise.cli.common import app, cli_errors, out, state
from stepwise.errors import StepwiseError

WORLDS = ("translation",)

sim_app = typer.Typer(
    help="Simulated worlds with known ground truth: make their datasets. Everything they "
    "score is a simulation, never real translation quality.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(sim_app, name="sim")


@sim_app.command()
@cli_errors
def make(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for dataset.jsonl and "
                                          "world.json (created if needed).")],
    world: Annotated[str, typer.Option(help=f"Which world: {', '.join(WORLDS)}.")] = "translation",
    docs: Annotated[int, typer.Option(help="How many documents (document i uses bundled "
                                      "text i % 6).")] = 6,
    seed: Annotated[int, typer.Option(help="The world's seed: the same seed gives the same "
                                      "documents.")] = 0,
    gap: Annotated[int, typer.Option(help="Fewest sentences between a term's introduction "
                                     "and its marked uses; keep it >= the page size.")] = 10,
) -> None:
    """Make a simulated dataset: documents in the synthetic language qsy, English references.

    Names, references and phrases come back later in marked forms that only memory resolves.
    Rows work with the LongMT agent's [bold]--policy oracle[/bold] and [bold]sim:translator[/bold].
    Example: [bold]stepwise sim make --world translation --docs 6 --seed 0 --out sim-data[/bold]
    """
    if world not in WORLDS:
        raise StepwiseError(f"unknown world {world!r} (known: {', '.join(WORLDS)})")
    from stepwise.sim.translation import make_documents, write_dataset

    made = make_documents(docs, seed, gap=gap)
    path = write_dataset(made, out_dir)
    if state["quiet"]:
        out.print(str(path))
        return
    kinds = Counter(term.kind for doc in made for term in doc.terms)
    uses: Counter[str] = Counter()
    for doc in made:
        for term in doc.terms:
            uses[term.kind] += len(term.uses)
    out.print(f"[bold]simulated[/bold] {world} world, seed {seed}: {len(made)} documents, "
              f"{sum(doc.sentences for doc in made)} sentences (qsy -> en)")
    table = Table()
    for column in ("terms", "count", "marked uses"):
        table.add_column(column, justify="right" if column != "terms" else "left")
    for kind in ("entity", "reference", "phrase"):
        table.add_row(kind, str(kinds[kind]), str(uses[kind]))
    out.print(table)
    out.print(f"wrote {path} and {path.parent / 'world.json'} (simulated)")
