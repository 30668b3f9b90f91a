"""The ``stepwise`` command line (typer + rich).

Every user mistake and every outside failure (bad URI, missing cassette, server down)
ends as one ``error:`` line on stderr and a non-zero exit; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stepwise import __version__
from stepwise.errors import StepwiseError

app = typer.Typer(
    name="stepwise",
    help="Tool-using LLM agents whose every step can be inspected, replayed, searched "
    "over and learned from.\n\nModel URIs: sim:<world>, replay:<cassette>, "
    "openai:<base_url> (with --model-name), hf:<local path>, tiny.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)
state = {"verbose": False, "quiet": False}


def cli_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn exceptions into one clear line (and exit 2); tracebacks only with --verbose."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 -- the boundary: nothing reaches the user as a traceback
            if state["verbose"]:
                err.print_exception()
            text = str(exc) if isinstance(exc, StepwiseError) else f"{type(exc).__name__}: {exc}"
            for line in text.splitlines() or [type(exc).__name__]:
                err.print(f"[red]error:[/red] {line}", highlight=False, markup=True, soft_wrap=True)
            if not state["verbose"] and not isinstance(exc, StepwiseError):
                err.print("(run with --verbose for the traceback)", style="dim")
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"stepwise {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and results.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    state["verbose"], state["quiet"] = verbose, quiet
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=verbose)], force=True)


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model URI: sim:<world>, "
                                       "replay:<cassette>, openai:<base_url>, hf:<path>, tiny.")]
ModelNameOpt = Annotated[str | None, typer.Option(
    "--model-name", help="Model name on an OpenAI-compatible server (openai: URIs).")]


def _model(uri: str, model_name: str | None, **kwargs: Any):
    from stepwise.llm import from_uri

    if model_name:
        kwargs["model_name"] = model_name
    return from_uri(uri, **kwargs)


def _outcome_table(outcomes: list, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("scenario", "agent", "checks", "result", "detail"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        passed = sum(check.passed for check in outcome.checks)
        failed = [c for c in outcome.checks if not c.passed]
        detail = outcome.error or "; ".join(
            f"{c.expectation.describe()}: {c.found}" for c in failed)
        table.add_row(
            outcome.name or Path(outcome.file).name, outcome.agent or "-",
            f"{passed}/{len(outcome.checks)}",
            "[green]pass[/green]" if outcome.passed else "[red]FAIL[/red]",
            detail or f"{outcome.seconds * 1000:.0f} ms",
        )
    return table


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
            out.print_json(json.dumps({
                "file": o.file, "name": o.name, "passed": o.passed, "error": o.error,
                "checks": [{"check": c.expectation.describe(), "passed": c.passed,
                            "found": c.found} for c in o.checks]}))
    else:
        failed = sum(not o.passed for o in outcomes)
        out.print(_outcome_table(outcomes, f"replayed {len(outcomes)} scenarios, {failed} failed"))
    if not all(o.passed for o in outcomes):
        raise typer.Exit(1)


@app.command("record")
@cli_errors
def record_command(
    scenario: Annotated[Path, typer.Argument(help="The scenario file to record.")],
    model: ModelOpt,
    model_name: ModelNameOpt = None,
) -> None:
    """Run a scenario against a real model and write its cassette (replacing the old one).

    Example: [bold]stepwise record scenarios/chat-tiny.yaml --model tiny[/bold]
    """
    from stepwise.scenario.runner import record_file

    outcome = record_file(str(scenario), _model(model, model_name), source=model)
    if outcome.error:
        raise StepwiseError(outcome.error)
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
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens to generate.")] = None,
) -> None:
    """Send one prompt to a model and print its answer: a quick check that a backend works.

    Example: [bold]stepwise ask "Hello" --model openai:http://localhost:8000/v1
    --model-name Qwen/Qwen3-8B[/bold]
    """
    chat = _model(model, model_name)
    messages = ([("system", system)] if system else []) + [("user", prompt)]
    params = {k: v for k, v in {"temperature": temperature, "max_tokens": max_tokens}.items()
              if v is not None}
    answer = chat.invoke(messages, **params)
    reasoning = answer.additional_kwargs.get("reasoning_content")
    if reasoning and not state["quiet"]:
        err.print(f"[dim]{reasoning}[/dim]")
    out.print(answer.text, highlight=False, markup=False)
    if answer.usage_metadata and not state["quiet"]:
        u = answer.usage_metadata
        err.print(f"[dim]{u['input_tokens']} tokens in, {u['output_tokens']} out[/dim]")


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
    out.print(f"wrote a tiny random model to {directory}; use it as hf:{directory}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
