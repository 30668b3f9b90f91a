"""``stepwise sim``: make the datasets of the simulated worlds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from stepwise.cli.common import app, cli_errors, out, state
from stepwise.cli.tables import ReadableTable, number
from stepwise.cli.wording import plural

World = Literal["translation"]  # the worlds whose datasets sim make writes
WORLDS = get_args(World)

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
    world: Annotated[World, typer.Option(help="Which world.")] = "translation",
    docs: Annotated[int, typer.Option(min=1, help="How many documents (document i uses "
                                      "bundled text i % 6).")] = 6,
    seed: Annotated[int, typer.Option(help="The world's seed: the same seed gives the same "
                                      "documents.")] = 0,
    gap: Annotated[int, typer.Option(min=1, help="Fewest sentences between a term's "
                                     "introduction and its marked uses; keep it >= the page "
                                     "size.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the counts the "
                                          "table shows and the files written.")] = False,
) -> None:
    """Make a simulated dataset: documents in the synthetic language qsy, English references.

    Names, references and phrases come back later in marked forms that only memory resolves.
    Rows work with the LongMT agent's [bold]--policy oracle[/bold] and [bold]sim:translator[/bold].
    Example: [bold]stepwise sim make --world translation --docs 6 --seed 0 --out sim-data[/bold]
    """
    from stepwise.sim.translation import make_documents, write_dataset

    made = make_documents(docs, seed, gap=gap)
    path = write_dataset(made, out_dir)
    if state["quiet"] and not as_json:
        out.print(str(path))
        return
    kinds = Counter(term.kind for doc in made for term in doc.terms)
    uses: Counter[str] = Counter()
    for doc in made:
        for term in doc.terms:
            uses[term.kind] += len(term.uses)
    terms = [{"kind": kind, "count": kinds[kind], "marked_uses": uses[kind]}
             for kind in ("entity", "reference", "phrase")]
    sentences = sum(doc.sentences for doc in made)
    world_file = path.parent / "world.json"
    if as_json:
        out.print_json(json.dumps({
            "world": world, "seed": seed, "simulated": True, "documents": len(made),
            "sentences": sentences, "terms": terms, "dataset": str(path),
            "world_file": str(world_file)}))
        return
    out.print(f"[bold]simulated[/bold] {world} world, seed {seed}: "
              f"{plural(len(made), 'document')}, {plural(sentences, 'sentence')} (qsy -> en)")
    out.print(ReadableTable(
        ["terms", number("count"), number("marked uses")],
        [(row["kind"], row["count"], row["marked_uses"]) for row in terms]))
    out.print(f"wrote {path} and {world_file} (simulated)")
