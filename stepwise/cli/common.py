"""What every ``stepwise`` command shares: the app, consoles, error boundary, options.

Every user mistake and every outside failure (bad URI, missing cassette, server down)
ends as one ``error:`` line on stderr and a non-zero exit; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stepwise import __version__
from stepwise.errors import StepwiseError, error_line

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
                err.print(f"[red]error:[/red] {escape(line)}", highlight=False, emoji=False,
                          soft_wrap=True)
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


def max_tokens_option(default: int, why: str) -> Any:
    """``--max-tokens`` for a command whose calls default to ``default`` tokens, for ``why``."""
    return Annotated[int | None, typer.Option(
        "--max-tokens", min=1, help=f"Most tokens one model call may generate (default: "
        f"{default}, {why}). Unbounded generation on a server runs to its context length "
        "and blocks every later request.", show_default=False)]


TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", min=0.1, help="Seconds one model call may take before it is given up "
    "(default: the backend's own, 60 s for openai: servers; none for hf: models).",
    show_default=False)]
TemperatureOpt = Annotated[float | None, typer.Option(
    "--temperature", min=0.0, help="Sampling temperature; 0 is greedy (default: the "
    "backend's own).", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Seed of the model's sampling, so sampled answers repeat (default: "
    "none).", show_default=False)]
RepetitionPenaltyOpt = Annotated[float | None, typer.Option(
    "--repetition-penalty", min=0.01, help="Above 1 discourages repeating tokens, which "
    "keeps small models out of loops (hf: models; sent as repetition_penalty to openai: "
    "servers such as vLLM; default: none).", show_default=False)]

ToolChoiceOpt = Annotated[str | None, typer.Option(
    "--tool-choice", help="How the deciding model must answer its first decision turn per "
    "step: auto (call tools or answer in words), required (call one of the tools: a small "
    "model that answers in prose otherwise then decides by tool calls; hf: models decode "
    "the call under its JSON schema), or a tool's name. Later turns of a step are auto. "
    "Default: auto.", show_default=False)]


def decision_choice(uri: str | None, tool_choice: str | None, applies: bool = True
                    ) -> dict[str, Any]:
    """``tool_choice=`` for the model a URI names, when it has that setting (else a warning)."""
    if not tool_choice or not applies or not uri:
        return {}
    if not uri.startswith(("hf:", "tiny", "openai:")):  # the backends that have the setting
        warn(f"{uri} takes no --tool-choice; ignored")
        return {}
    return {"tool_choice": tool_choice}


@dataclass(frozen=True)
class CallOptions:
    """How every model call of a command is bounded and sampled.

    ``max_tokens`` is the command's default unless the user gave ``--max-tokens``; the
    other options are None unless given, so a backend keeps its own default for them.
    """

    max_tokens: int | None = None
    timeout: float | None = None
    temperature: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    given: frozenset[str] = frozenset()  # the options the user set on the command line

    @classmethod
    def from_cli(cls, default_max_tokens: int, max_tokens: int | None, timeout: float | None,
                 temperature: float | None, seed: int | None,
                 repetition_penalty: float | None) -> CallOptions:
        given = {"max_tokens": max_tokens, "timeout": timeout, "temperature": temperature,
                 "seed": seed, "repetition_penalty": repetition_penalty}
        return cls(max_tokens=max_tokens or default_max_tokens, timeout=timeout,
                   temperature=temperature, seed=seed, repetition_penalty=repetition_penalty,
                   given=frozenset(k for k, v in given.items() if v is not None))

    def capped(self, max_tokens: int) -> CallOptions:
        """These options with a lower default token limit (``--max-tokens`` still wins)."""
        if "max_tokens" in self.given:
            return self
        return replace(self, max_tokens=min(max_tokens, self.max_tokens or max_tokens))

    def values(self) -> dict[str, Any]:
        names = ("max_tokens", "timeout", "temperature", "seed", "repetition_penalty")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def model_kwargs(self, fields: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """Constructor kwargs for a backend with these pydantic fields, and the options
        the user gave that it cannot take (defaults a backend lacks are simply left out)."""
        fields = set(fields)
        kwargs: dict[str, Any] = {}
        dropped: list[str] = []
        for name, value in self.values().items():
            if name in fields:
                kwargs[name] = value
            elif name == "repetition_penalty" and "extra_body" in fields:
                kwargs["extra_body"] = {"repetition_penalty": value}  # vLLM, SGLang, TGI
            elif name in self.given:
                dropped += options_named([name])
        return kwargs, dropped


def model_from_uri(uri: str, model_name: str | None, options: CallOptions | None = None,
                   **kwargs: Any):
    """The model a URI names, its calls bounded by ``options`` where the backend has them."""
    from stepwise.llm import from_uri

    if model_name:
        kwargs["model_name"] = model_name
    model = from_uri(uri, **kwargs)
    extra = call_kwargs(uri, model, options) if options is not None else {}
    return from_uri(uri, **kwargs, **extra) if extra else model


def call_kwargs(uri: str, model: Any, options: CallOptions) -> dict[str, Any]:
    """The constructor kwargs that bound ``model``'s calls (``model`` built from ``uri``).

    A ``replay:`` model answers as recorded (the options shaped the recording, and they
    would change its request keys); a simulated one takes only the options it has fields
    for. Options the user gave that a backend cannot take are named in one warning line.
    """
    if uri.startswith("replay:"):
        if options.given:
            warn(f"{uri} answers as recorded; "
                 f"{', '.join(sorted(options_named(options.given)))} do not apply")
        return {}
    extra, dropped = options.model_kwargs(type(model).model_fields)
    if dropped:
        warn(f"{uri} takes no {', '.join(dropped)}; ignored")
    return extra


def options_named(names: Iterable[str]) -> list[str]:
    """Option names as the command line spells them."""
    return ["--" + name.replace("_", "-") for name in names]


def generates(model: Any) -> bool:
    """Whether per-call token limits reach a model: a generating backend, not a replay."""
    from stepwise.llm.replay import CassetteChatModel

    return not isinstance(model, CassetteChatModel) and "max_tokens" in type(model).model_fields


def warn(line: str) -> None:
    """One warning line on stderr (also under --quiet: it says a result may mislead)."""
    err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, emoji=False,
              soft_wrap=True)


class TaskFailures:
    """Tasks that failed while the others went on: one line each, and the exit status."""

    def __init__(self, noun: str = "tasks") -> None:
        self.noun = noun
        self.errors: dict[str, str] = {}

    def record(self, task: str, exc: BaseException) -> str:
        """Keep a task's failure as one line (its first); returns that line."""
        if state["verbose"]:
            err.print_exception()
        return self.add(task, error_line(exc))

    def add(self, task: str, line: str) -> str:
        self.errors[task] = line
        err.print(f"[red]failed:[/red] {escape(task)}: {escape(line)}", highlight=False,
                  emoji=False, soft_wrap=True)
        return line

    def exit_if_any(self, total: int,
                    rerun: str = "rerun the same command to redo only those") -> None:
        """Exit 1 with a closing line when some tasks failed (the finished ones are kept)."""
        if not self.errors:
            return
        names = ", ".join(list(self.errors)[:5]) + (", ..." if len(self.errors) > 5 else "")
        err.print(f"{len(self.errors)} of {total} {self.noun} failed: {names} ({rerun})",
                  highlight=False, markup=False, emoji=False, soft_wrap=True)
        raise typer.Exit(1)


def resume_command(command: str, fallback: str) -> str:
    """The command line the user ran, with ``--resume``: what a stopped run is continued with.

    ``fallback`` where the command was not typed itself (another command or Python ran it).
    """
    args = sys.argv[1:]
    if command not in args:
        return fallback
    args = [arg for arg in args if arg != "--no-resume"]
    return shlex.join(["stepwise", *args, *([] if "--resume" in args else ["--resume"])])


def _say(line: str) -> None:
    err.print(line, highlight=False, markup=False, emoji=False, soft_wrap=True)


@contextmanager
def stop_on_ctrl_c(what: str, resume: str, graceful: bool = True) -> Iterator[threading.Event]:
    """Ctrl-C during resumable work: the first sets the yielded event, which the work checks
    whenever ``what`` ends, and says at once how to resume; the second exits at once (130).

    The second exits from the signal handler instead of unwinding: unwinding would wait for
    the threads in the middle of a model call, and the work's files survive a kill anyway.
    Work that cannot check the event (``graceful=False``), or a caller outside the main
    thread, gets Python's Ctrl-C: it stops at the first, with the same hint.
    """
    stop = threading.Event()
    if graceful and threading.current_thread() is threading.main_thread():
        def on_ctrl_c(signum: int, frame: Any) -> None:
            if stop.is_set():
                _say(f"interrupted; resume with: {resume}")
                err.show_cursor(True)  # a progress bar hides it
                for console in (out, err):
                    console.file.flush()
                os._exit(130)
            stop.set()
            _say(f"stopping after the current {what} (Ctrl-C again to stop now); "
                 f"resume with: {resume}")

        previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            yield stop
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    try:
        yield stop
    except KeyboardInterrupt:
        _say(f"interrupted; resume with: {resume}")
        raise typer.Exit(130) from None
