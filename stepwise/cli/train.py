"""``stepwise train dpo``: DPO + SFT on the explorer's step-level pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import (
    ThreadsOpt,
    app,
    cli_errors,
    err,
    hold_threads,
    options_checked,
    out,
    progress_bar,
    state,
)
from stepwise.cli.dpo_table import training_table
from stepwise.cli.wording import agreeing, plural
from stepwise.train.dpo import default, described

train_app = typer.Typer(
    help="Train a model on step-level preference pairs (TRL). The result loads back as "
    "hf:DIR, e.g. as the LongMT module policy (--policy-model hf:DIR).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(train_app, name="train")


@train_app.command()
@cli_errors
def dpo(
    pairs: Annotated[Path, typer.Option(help="Preference pairs JSONL (stepwise explore's "
                                        "pairs.jsonl, or any TRL conversational pairs).")],
    model: Annotated[str, typer.Option("--model", "-m", help="hf:PATH (a local model folder "
                                       "with its tokenizer and chat template) or tiny (a "
                                       "random tiny model built here).")],
    out_dir: Annotated[Path, typer.Option("--out", help="The trained model (loads as "
                                          "hf:DIR), metrics.jsonl, curves.png, train.json.")],
    beta: Annotated[float, typer.Option(help=described("beta"))] = default("beta"),
    sft_weight: Annotated[float, typer.Option(help=described("sft_weight"))] = \
        default("sft_weight"),
    lora: Annotated[int | None, typer.Option(help=described("lora"))] = default("lora"),
    top_layers: Annotated[int | None, typer.Option(help=described("top_layers"))] = \
        default("top_layers"),
    max_steps: Annotated[int, typer.Option(help=described("max_steps"))] = \
        default("max_steps"),
    eval_frac: Annotated[float, typer.Option(help=described("eval_frac"))] = \
        default("eval_frac"),
    lr: Annotated[float | None, typer.Option(help=described("learning_rate"))] = \
        default("learning_rate"),
    batch_size: Annotated[int, typer.Option(help=described("batch_size"))] = \
        default("batch_size"),
    max_length: Annotated[int, typer.Option(help=described("max_length"))] = \
        default("max_length"),
    padding_free: Annotated[bool, typer.Option(help=described("padding_free"))] = \
        default("padding_free"),
    skip_bad: Annotated[bool, typer.Option(help=described("skip_bad"))] = \
        default("skip_bad"),
    seed: Annotated[int, typer.Option(help=described("seed"))] = default("seed"),
    device: Annotated[str, typer.Option(help=described("device"))] = default("device"),
    as_json: Annotated[bool, typer.Option("--json", help="Print train.json instead of the "
                                          "table.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Train with DPO plus an SFT term on step-level preference pairs (TRL DPOTrainer).

    Every pair is checked first: its format, and that the prompt's tokens are a prefix of
    prompt + step under the model's chat template. Bad pairs stop the run with the
    reasons and line numbers (or are dropped with --skip-bad).

    Example:
      [bold]stepwise explore synth/dataset.jsonl -m sim:translator --out run1[/bold]
      [bold]stepwise train dpo --pairs run1/pairs.jsonl --model tiny --out policy[/bold]
      [bold]stepwise translate synth/dataset.jsonl -m sim:translator --policy auto --policy-model hf:policy[/bold]
    """
    hold_threads(threads)
    from stepwise.train.dpo import DPOSettings, train_dpo

    with options_checked(learning_rate="--lr"):  # the ranges are the settings' fields
        settings = DPOSettings(beta=beta, sft_weight=sft_weight, lora=lora,
                               top_layers=top_layers, max_steps=max_steps,
                               eval_frac=eval_frac, learning_rate=lr,
                               batch_size=batch_size, max_length=max_length,
                               padding_free=padding_free, seed=seed, skip_bad=skip_bad,
                               device=device)
    quiet = as_json or state["quiet"]

    def show(report) -> None:
        if report.dropped and not quiet:
            dropped = sum(report.dropped.values())
            err.print(f"[yellow]{dropped} of {plural(report.rows, 'pair')} "
                      f"{agreeing(dropped, 'fails', 'fail')} the checks:[/yellow]")
            for line in report.lines():
                err.print(f"  {line}", highlight=False)
        if report.conflicting_prompts and not quiet:
            many = report.conflicting_prompts
            err.print(f"[yellow]{plural(many, 'prompt')} {agreeing(many, 'has', 'have')} a "
                      "step that is chosen in one pair and rejected in another (pairs from "
                      "every parent do this; the best path's do not)[/yellow]")

    with progress_bar("steps", disable=quiet) as progress:
        task = progress.add_task("training", total=max_steps)
        result = train_dpo(pairs, model, out_dir, settings,
                           on_step=lambda step, total: progress.update(task, completed=step),
                           on_report=show)
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
        return
    out.print(training_table(result.as_dict()))
    speed = f", {result.tokens_per_second:.0f} tokens/s" if result.tokens_per_second else ""
    out.print(f"trained model in {out_dir}/ (load it as hf:{out_dir}); curves in "
              f"{out_dir}/curves.png; {result.seconds:.0f} s{speed}")
