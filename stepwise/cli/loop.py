"""``stepwise loop``: rounds of explore → pairs → DPO → the trained model back as the policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from stepwise.cli.common import (
    DECISION_TOKENS,
    LONGMT_MAX_TOKENS,
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    HorizonOpt,
    LongMTMaxTokensOpt,
    ModelOpt,
    RepetitionPenaltyOpt,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    app,
    call_kwargs,
    cli_errors,
    err,
    hold_threads,
    options_checked,
    out,
    progress_bar,
)
from stepwise.cli.tables import Column, ReadableTable, number
from stepwise.cli.translate import DecideOpt
from stepwise.jsonl import read_json
from stepwise.train.dpo import default, described
from stepwise.train.loop import Negatives, StepReward

ROUND_COLUMNS = (("pairs", "pairs"), ("chosen_is_best", "chosen = best"),
                 ("reward_accuracy_before", "reward acc before"),
                 ("reward_accuracy_after", "reward acc after"), ("train_fit", "train fit"),
                 ("bleu", "bleu"), ("module_calls", "module calls"),
                 ("fallbacks", "fallbacks"), ("oracle_agreement", "= oracle"),
                 ("failed_documents", "failed docs"))


HELD_OUT_COLUMNS = (("bleu", "bleu"), ("d_bleu", "d-bleu"), ("oracle_agreement", "= oracle"),
                    ("module_calls", "module calls"), ("fallbacks", "fallbacks"),
                    ("tokens", "tokens"))


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _decided(policy: str, row: dict[str, Any]) -> str:
    """A model row's label with how it decided (rank, reward), where it did not generate."""
    decide = row.get("decide", "generate")
    return policy if decide == "generate" else f"{policy} ({decide})"


def held_out_table(table: dict[str, Any]) -> ReadableTable:
    """Every policy on the same documents: baselines, the untrained model, each round."""
    where = "held-out documents" if table["held_out"] else "the explored documents"
    title = f"Every policy on {where}" + (
        " [yellow](simulated world)[/yellow]" if table["simulated"] else "")
    gaps = table.get("bleu_gap_closed", {})
    rows = [(_decided(policy, row), *(_cell(row.get(key)) for key, _ in HELD_OUT_COLUMNS),
             _cell(gaps.get(policy))) for policy, row in table["rows"].items()]
    return ReadableTable([Column("policy", wrap=False),
                          *(number(label) for _, label in HELD_OUT_COLUMNS),
                          number("gap closed")], rows, title=Text.from_markup(title))


def rounds_that_did_not_improve(table: dict[str, Any]) -> list[str]:
    """A line for each round whose held-out row is no better than the row before it (the
    untrained model's for round 1): agreement with the best sets where the world knows
    them, else BLEU."""
    rows = table["rows"]
    trained = sorted((int(name.split()[1]), name) for name in rows if name.startswith("round "))
    lines, before = [], "untrained"
    for _, name in trained:
        if before in rows:
            key = "oracle_agreement" if rows[name].get("oracle_agreement") is not None and \
                rows[before].get("oracle_agreement") is not None else "bleu"
            now, then = rows[name].get(key), rows[before].get(key)
            if now is not None and then is not None and now <= then:
                what = "agreement" if key == "oracle_agreement" else "BLEU"
                lines.append(f"{name} did not improve on {before}: held-out {what} "
                             f"{now:.2f} against {then:.2f}")
        before = name
    return lines


def rounds_table(rows: list[dict[str, Any]], simulated: bool) -> ReadableTable:
    title = "Iterative DPO, one row per round" + (
        " [yellow](simulated world)[/yellow]" if simulated else "")
    return ReadableTable([number("round"), *(number(label) for _, label in ROUND_COLUMNS)],
                         [(row["round"], *(_cell(row.get(key)) for key, _ in ROUND_COLUMNS))
                          for row in rows], title=Text.from_markup(title))


@app.command()
@cli_errors
def loop(
    dataset: Annotated[Path, typer.Argument(help="A dataset .jsonl with references (e.g. "
                                            "from stepwise sim make).")],
    out_dir: Annotated[Path, typer.Option("--out", help="The loop folder: round-N/explore, "
                                          "round-N/model (hf:), rounds.json.")],
    model: ModelOpt = "sim:translator",
    start: Annotated[str, typer.Option(help="The policy model round 1 trains: tiny or "
                                       "hf:PATH.")] = "tiny",
    rounds: Annotated[int, typer.Option(help="How many rounds.")] = 2,
    heldout: Annotated[Path | None, typer.Option(help="Documents never explored or trained "
                                                 "on (e.g. stepwise sim make --seed 1): "
                                                 "the baselines, the untrained model and "
                                                 "each round are measured there.")] = None,
    simulations: Annotated[int, typer.Option(help="MCTS iterations per document.")] = 24,
    per_step: Annotated[int | None, typer.Option(help="Search step by step instead: this "
                                                 "many simulations per page, so every page "
                                                 "gets a pair.")] = None,
    reward: Annotated[StepReward, typer.Option(help="What scores a step in search: document "
                                        "(BLEU after the rollout) or page (its page's "
                                        "sentences).")] = "document",
    horizon: HorizonOpt = None,
    negatives: Annotated[Negatives, typer.Option(help="A pair's rejected side: worst (the min-Q "
                                           "sibling), closest (the best one below the "
                                           "chosen: a near miss) or both.")] = "worst",
    page_sentences: Annotated[int, typer.Option(help="Most sentences per page.")] = 5,
    max_steps: Annotated[int, typer.Option(help=described("max_steps"))] = \
        default("max_steps"),
    lr: Annotated[float | None, typer.Option(help=described("learning_rate"))] = \
        default("learning_rate"),
    beta: Annotated[float, typer.Option(help=described("beta"))] = default("beta"),
    sft_weight: Annotated[float, typer.Option(help=described("sft_weight"))] = \
        default("sft_weight"),
    lora: Annotated[int | None, typer.Option(help=described("lora"))] = default("lora"),
    top_layers: Annotated[int | None, typer.Option(help=described("top_layers"))] = \
        default("top_layers"),
    eval_frac: Annotated[float, typer.Option(help=described("eval_frac"))] = \
        default("eval_frac"),
    seed: Annotated[int, typer.Option(help="Seeds search (sampled model calls included) and "
                                      "training.")] = 0,
    decide: DecideOpt = "generate",
    max_tokens: LongMTMaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of the "
                                          "tables: rounds (rounds.json) and heldout "
                                          "(heldout.json; null before there is one).")] = False,
) -> None:
    """Iterative preference training on the LongMT module decisions.

    Each round: explore the dataset (round 1 with random rollouts, later rounds with the
    last trained model deciding in rollouts) -> step-level pairs -> DPO + SFT from the
    last model -> that model decides the modules while --model translates. Finished
    stages are kept: run the same command again to resume. A document whose search fails
    is left out of that round's pairs; a stage that fails as a whole stops the loop (exit
    1) with the rounds before it kept.

    Example:
      [bold]stepwise sim make --world translation --docs 4 --out synth[/bold]
      [bold]stepwise loop synth/dataset.jsonl --rounds 2 --out loop1[/bold]
    """
    hold_threads(threads)
    from stepwise.llm import from_uri
    from stepwise.train.dpo import DPOSettings
    from stepwise.train.loop import LoopSettings, StageFailed, check_documents, run_loop

    with options_checked(learning_rate="--lr"):  # the ranges are the settings' fields
        settings = LoopSettings(
            dataset=str(dataset), model=model, start=start, rounds=rounds,
            simulations=simulations, page_sentences=page_sentences, seed=seed,
            dpo=DPOSettings(beta=beta, sft_weight=sft_weight, lora=lora,
                            top_layers=top_layers, max_steps=max_steps, eval_frac=eval_frac,
                            seed=seed, learning_rate=lr,
                            device=device or "auto"),
            per_step=per_step, reward=reward, horizon=horizon, negatives=negatives,
            heldout=str(heldout) if heldout else None, decide=decide)
    check_documents(settings)  # before any model is built (tiny is made on first use)
    calls = CallOptions.from_cli(LONGMT_MAX_TOKENS, max_tokens, timeout, temperature, None,
                                 repetition_penalty, device, dtype)
    model_kwargs = call_kwargs(model, from_uri(model), calls)
    policy_kwargs = call_kwargs(start, from_uri(start), calls)  # later rounds: hf: like it
    settings = settings.model_copy(update={
        "model_kwargs": model_kwargs, "policy_kwargs": policy_kwargs,
        "decision_max_tokens": calls.capped(DECISION_TOKENS).max_tokens
        if "max_tokens" in policy_kwargs else None,
        "translation_max_tokens": calls.max_tokens if "max_tokens" in model_kwargs else None})
    simulated = model.startswith("sim:")
    with progress_bar(disable=as_json) as progress:
        bar = [progress.add_task("starting")]

        def on_stage(round_: int, stage: str) -> None:
            """A fresh task per stage: its own count, unit and elapsed time from zero."""
            progress.remove_task(bar[0])
            bar[0] = progress.add_task(f"round {round_} · {stage}" if round_ else stage)

        def on_progress(done: int, total: int | None, unit: str, detail: str = "", *,
                        timed: bool = True) -> None:
            progress.update(bar[0], completed=done, total=total, unit=unit, detail=detail,
                            timed=timed)

        try:
            rows = run_loop(settings, out_dir, on_stage=on_stage, on_progress=on_progress)
        except StageFailed as failed:
            stopped: StageFailed | None = failed
            rows = failed.rows
        else:
            stopped = None
    heldout_file = out_dir / "heldout.json"
    heldout_table = read_json(heldout_file) if heldout_file.is_file() else None
    if as_json:
        out.print_json(json.dumps({"rounds": rows, "heldout": heldout_table},
                                  ensure_ascii=False))
    else:
        if rows:
            out.print(rounds_table(rows, simulated))
        if heldout_table is not None:
            out.print(held_out_table(heldout_table))
            for line in rounds_that_did_not_improve(heldout_table):
                out.print(line, highlight=False)
    if stopped is not None:
        err.print(f"[red]error:[/red] {escape(str(stopped))} (rounds before it are kept in "
                  f"{escape(str(out_dir))}/rounds.json; run the same command again to resume)",
                  highlight=False, emoji=False, soft_wrap=True)
        raise typer.Exit(1)
    if simulated:
        err.print("[yellow]simulated: pairs, scores and agreement come from a synthetic "
                  "world, not real translation quality[/yellow]")
    if not as_json:
        out.print(f"every round's pairs, model and figures in {out_dir}/ (rounds.json)")
