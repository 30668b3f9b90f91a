"""What every ``stepwise`` command shares: the app, consoles, error boundary, options.

Every user mistake and every outside failure (bad URI, missing cassette, server down)
ends as one ``error:`` line on stderr and a non-zero exit; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

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


def model_from_uri(uri: str, model_name: str | None, **kwargs: Any):
    from stepwise.llm import from_uri

    if model_name:
        kwargs["model_name"] = model_name
    return from_uri(uri, **kwargs)
