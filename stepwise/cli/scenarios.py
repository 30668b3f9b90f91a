"""Scenario and model commands: replay, record, ask, tiny."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from stepwise.cli.common import (
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    ModelNameOpt,
    ModelOpt,
    RepetitionPenaltyOpt,
    SeedOpt,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    app,
    cli_errors,
    err,
    hold_threads,
    max_tokens_option,
    model_from_uri,
    out,
    state,
)
from stepwise.cli.tables import Column, ReadableTable, number
from stepwise.cli.wording import plural
from stepwise.errors import StepwiseError

ASK_MAX_TOKENS = 512  # a quick check of a backend, not an essay
RECORD_MAX_TOKENS = 512  # a scenario's turns are tool calls and short answers
AskMaxTokensOpt = max_tokens_option(ASK_MAX_TOKENS, "enough for a quick check of a backend")
RecordMaxTokensOpt = max_tokens_option(RECORD_MAX_TOKENS, "a scenario's turns are tool calls "
                                       "and short answers")


def _outcome_table(outcomes: list, title: str) -> ReadableTable:
    rows = []
    for outcome in outcomes:
        passed = sum(check.passed for check in outcome.checks)
        failed = [c for c in outcome.checks if not c.passed]
        detail = outcome.error or "; ".join(
            f"{c.expectation.describe()}: {c.found}" for c in failed)
        rows.append((outcome.name or Path(outcome.file).name, outcome.agent or "-",
                     f"{passed}/{len(outcome.checks)}",
                     Text("pass", "green") if outcome.passed else Text("FAIL", "red"),
                     detail or f"{outcome.seconds * 1000:.0f} ms"))
    return ReadableTable(["scenario", "agent", number("checks"), Column("result", wrap=False),
                          "detail"], rows, title=title)


def _outcome_json(outcome) -> str:
    """A scenario's outcome as ``--json`` prints it: one object per scenario."""
    return json.dumps({
        "file": outcome.file, "name": outcome.name, "passed": outcome.passed,
        "error": outcome.error,
        "checks": [{"check": c.expectation.describe(), "passed": c.passed, "found": c.found}
                   for c in outcome.checks]})


@app.command()
@cli_errors
def replay(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Scenario files or folders of them (default: ./scenarios).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario.")] = False,
) -> None:
    """Replay scenarios against their cassettes and check their expectations.

    Prints a pass/fail table; exits 1 when any scenario fails or cannot run.
    Example: [bold]stepwise replay scenarios/[/bold]
    """
    from stepwise.scenario.loader import find_scenarios
    from stepwise.scenario.runner import replay_file

    targets = paths or [Path("scenarios")]
    files = find_scenarios(targets)
    if not files:
        raise StepwiseError(f"no scenario files in {', '.join(map(str, targets))}")
    outcomes = [replay_file(str(f)) for f in files]
    if as_json:
        for o in outcomes:
            out.print_json(_outcome_json(o))
    else:
        failed = sum(not o.passed for o in outcomes)
        out.print(_outcome_table(outcomes, f"replayed {plural(len(outcomes), 'scenario')}, "
                                           f"{failed} failed"))
    if not all(o.passed for o in outcomes):
        raise typer.Exit(1)


@app.command("record")
@cli_errors
def record_command(
    scenario: Annotated[Path, typer.Argument(help="The scenario file to record.")],
    model: ModelOpt,
    model_name: ModelNameOpt = None,
    max_tokens: RecordMaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the new "
                                          "recording's checks, as replay --json.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Run a scenario against a real model and write its cassette (replacing the old one).

    Example: [bold]stepwise record scenarios/chat-tiny-tools.yaml --model tiny[/bold]
    """
    hold_threads(threads)
    from stepwise.scenario.runner import record_file

    calls = CallOptions.from_cli(RECORD_MAX_TOKENS, max_tokens, timeout, temperature, seed,
                                 repetition_penalty, device, dtype)
    outcome = record_file(str(scenario), model_from_uri(model, model_name, calls), source=model)
    if outcome.error:
        raise StepwiseError(outcome.error)
    if as_json:
        out.print_json(_outcome_json(outcome))
    else:
        out.print(_outcome_table([outcome], f"recorded {scenario}"))
    if not outcome.passed:
        err.print("the new recording fails some expectations: update them or the scenario")
        raise typer.Exit(1)


@app.command()
@cli_errors
def ask(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: ModelOpt = "sim:echo",
    model_name: ModelNameOpt = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: AskMaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Send one prompt to a model and print its answer: a quick check that a backend works.

    Example: [bold]stepwise ask "Hello" --model openai:http://localhost:8000/v1
    --model-name Qwen/Qwen3-8B[/bold]
    """
    hold_threads(threads)
    calls = CallOptions.from_cli(ASK_MAX_TOKENS, max_tokens, timeout, temperature, seed,
                                 repetition_penalty, device, dtype)
    chat = model_from_uri(model, model_name, calls)
    messages = ([("system", system)] if system else []) + [("user", prompt)]
    answer = chat.invoke(messages)
    reasoning = answer.additional_kwargs.get("reasoning_content")
    if reasoning and not state["quiet"]:
        err.print(reasoning, style="dim", markup=False, emoji=False, highlight=False)
    out.print(answer.text, highlight=False, markup=False, emoji=False)
    if answer.usage_metadata and not state["quiet"]:
        u = answer.usage_metadata
        err.print(f"[dim]{plural(u['input_tokens'], 'token')} in, {u['output_tokens']} out[/dim]")


@app.command()
@cli_errors
def tiny(
    directory: Annotated[Path, typer.Argument(help="Where to write the model.")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a tiny random Qwen2-style model with a locally trained tokenizer.

    No download: for tests and demos of the plumbing. Use it as [bold]hf:DIRECTORY[/bold].
    """
    from stepwise.llm.tiny import build_tiny

    if directory.exists() and any(directory.iterdir()):
        raise StepwiseError(f"{directory} exists and is not empty")
    build_tiny(directory, seed=seed)
    out.print(f"wrote a tiny random model to {directory}; use it as hf:{directory}",
              markup=False, emoji=False)
