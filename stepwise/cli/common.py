"""What every ``stepwise`` command shares: the app, consoles, error boundary, options.

Every user mistake and every outside failure (bad URI, missing cassette, server down)
ends as one ``error:`` line on stderr and a non-zero exit; ``--verbose`` adds the traceback.
A usage error (a missing option, a value out of its range) is the usage line, then one
``error:`` line naming the option, exit 2.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from stepwise import __version__
from stepwise.errors import StepwiseError, error_line, problem_line, validation_line
from stepwise.wording import plural

if TYPE_CHECKING:
    from stepwise.threads import ThreadBudget

out = Console()
err = Console(stderr=True)
state = {"verbose": False, "quiet": False}


def print_error(line: str) -> None:
    """One ``error:`` line on stderr."""
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, emoji=False, soft_wrap=True)


class _Argument(TyperArgument):
    """An argument as click names it: DATASET in the usage line and the help, [TASK] when
    it is optional (typer's own spelling is {dataset})."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return [name if self.required else f"[{name}]"]

    def process_value(self, ctx: Any, value: Any) -> Any:
        _refuse_nul(self, ctx, value)
        return super().process_value(ctx, value)


class _Option(TyperOption):
    """An option as click shows it: a flag without a type (--json, not --json <bool>)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else super().display_type_rich(ctx)

    def process_value(self, ctx: Any, value: Any) -> Any:
        _refuse_nul(self, ctx, value)
        return super().process_value(ctx, value)


def _refuse_nul(param: Any, ctx: Any, value: Any) -> None:
    """No path or name holds a NUL character; one that does would end as Python's bare
    "embedded null byte" wherever it is first opened."""
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str) and "\0" in item:
            raise typer.BadParameter(f"{item!r} holds a NUL character", ctx=ctx, param=param)


def _plain(params: list[Any]) -> list[Any]:
    """Parameters shown and checked as ``_Argument`` and ``_Option`` do: typer builds them,
    and each command's help option, before any of their classes can be chosen."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


def reflowed(help_text: str | None) -> str | None:
    """A docstring's paragraphs as one line each, so that help wraps to the terminal
    (typer keeps a docstring's single line breaks, which leaves ragged lines at 80
    columns). Indented lines (examples), list items and lines after one ending in ":" keep
    their own line; a paragraph opened by \b is left as written."""
    if not help_text:
        return help_text
    paragraphs = []
    for paragraph in inspect.cleandoc(help_text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.splitlines():
            own_line = not lines or line[:1].isspace() or line.lstrip().startswith(("- ", "* ")) \
                or lines[-1].endswith(":") or lines[-1][:1].isspace()
            if own_line:
                lines.append(line)
            else:
                lines[-1] += " " + line.strip()
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _plain_commands(group: TyperGroup) -> None:
    for command in group.commands.values():
        command.help = reflowed(command.help)
        if type(command) is TyperCommand:
            command.__class__ = _Command
        elif type(command) is TyperGroup:
            command.__class__ = _Group
            _plain_commands(command)


def usage_error_line(exc: Exception) -> str:
    """A usage error's message in one line; an option value out of its range (typer checks
    ``min=``/``max=`` with pydantic) as ``--workers must be at least 1, got 0``."""
    param = getattr(exc, "param", None)
    cause = exc.__cause__
    if param is not None and isinstance(cause, ValidationError) and cause.errors():
        name = max(param.opts, key=len) if getattr(param, "opts", None) else param.name
        return problem_line(cause.errors(include_url=False)[0], name)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return " ".join(message.split())


class StepwiseGroup(TyperGroup):
    """The ``stepwise`` app: a usage error (a missing option, a bad value) prints the usage
    and one ``error:`` line, exit 2, as every other mistake does (typer's own is a boxed
    panel); help shows arguments and flags the way click does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _plain_commands(self)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors():
            return super().invoke(ctx)


@contextmanager
def _usage_errors() -> Iterator[None]:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    try:
        yield
    except NoArgsIsHelpError:
        raise  # the help itself, shown by typer
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            _say(ctx.get_usage())
            if ctx.command.get_help_option(ctx) is not None:
                _say(f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.")
        print_error(usage_error_line(exc))
        raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="stepwise",
    help="Tool-using LLM agents whose every step can be inspected, replayed, searched "
    "over and learned from.\n\nModel URIs: sim:<world>, replay:<cassette>, "
    "openai:<base_url> (with --model-name), hf:<local path>, tiny.",
    cls=StepwiseGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


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
            if isinstance(exc, ValidationError):  # settings built from options: name the first
                print_error(validation_line(exc))
                raise typer.Exit(2) from None
            text = str(exc) if isinstance(exc, StepwiseError) else f"{type(exc).__name__}: {exc}"
            for line in text.splitlines() or [type(exc).__name__]:
                print_error(line)
            if not state["verbose"] and not isinstance(exc, StepwiseError):
                err.print("(run with --verbose for the traceback)", style="dim")
            raise typer.Exit(2) from None

    return wrapper


@contextmanager
def options_checked(**names: str) -> Iterator[None]:
    """Settings models built from a command's options: a value outside a field's range is one
    line naming the option (``names``: field -> option where the option is spelled
    otherwise, e.g. ``learning_rate="--lr"``), exit 2, before anything is written."""
    try:
        yield
    except ValidationError as exc:
        raise StepwiseError(validation_line(exc, names)) from None


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


ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for each caller's torch, BLAS and tokenizer work "
    "(default: the cores other work leaves free, shared out between the callers; "
    "OMP_NUM_THREADS when it is set). Child processes get the same.", show_default=False)]


def hold_threads(threads: int | None, workers: int = 1, parallel: int = 1) -> ThreadBudget:
    """Hold this process (and what it starts) to its thread budget: the first thing a command
    that runs models or torch does, before either is loaded, since libraries size their
    thread pools when they load. ``workers`` x ``parallel`` callers share the cores."""
    from stepwise.threads import thread_budget

    budget = thread_budget(workers, parallel, threads)
    budget.apply()
    if state["verbose"]:
        _say(budget.describe())
    if budget.oversubscribed:
        warn(oversubscribed_line(budget))
    return budget


def oversubscribed_line(budget: ThreadBudget) -> str:
    """Why a thread count given by hand will be slow: the threads wait on each other."""
    name = budget.source
    given = f"{name} {budget.threads}" if name == "--threads" else f"{name}={budget.threads}"
    if budget.callers > 1:
        given += f" for each of {budget.callers} callers (workers x parallel)"
    return (f"{given} asks for {plural(budget.threads * budget.callers, 'thread')} on "
            f"{plural(budget.cores, 'core')}: they will wait on each other (without {name}, "
            "the free cores are shared out)")


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

DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="Where hf: and tiny models run: auto (a CUDA GPU, else Apple's MPS, "
    "else the CPU), cpu, cuda, cuda:N or mps. Other models ignore it. Default: auto.",
    show_default=False)]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]  # hf's DTYPES, without its import
DtypeOpt = Annotated[Dtype | None, typer.Option(
    "--dtype", case_sensitive=False, help="The weights' precision for hf: and tiny models: "
    "auto (bfloat16 on a GPU that has it, else float32), float32, float16 or bfloat16. Other "
    "models ignore it. Default: auto.", show_default=False)]

ToolChoiceOpt = Annotated[str | None, typer.Option(
    "--tool-choice", help="How the deciding model must answer its first decision turn per "
    "step: auto (call tools or answer in words), required (call one of the tools: a small "
    "model that answers in prose otherwise then decides by tool calls; hf: models decode "
    "the call under its JSON schema), or a tool's name. Later turns of a step are auto. "
    "Default: auto.", show_default=False)]

# What the LongMT commands (translate, explore, loop) share: the per-call limits of a page's
# translation and of a module decision, and how a document is paged.
LONGMT_MAX_TOKENS = 2048  # the cap; each page's translation asks for about its own length
DECISION_TOKENS = 128  # a module decision is a few short tool calls
LONGMT_TOKENS_WHY = ("a cap: each page's translation asks for 4/3 of its characters + 64, "
                     f"each module decision for {DECISION_TOKENS}")
LongMTMaxTokensOpt = max_tokens_option(LONGMT_MAX_TOKENS, LONGMT_TOKENS_WHY)
PageSentencesOpt = Annotated[int, typer.Option(min=1, help="Most sentences per page.")]
HorizonOpt = Annotated[int | None, typer.Option(
    min=0, help="With --reward page: a rollout plays at most this many pages past the page "
    "it scores instead of the rest of the document (a page's reward needs none of the pages "
    "after it; 1 also finishes lines that cross into the next page).")]


def decision_choice(uri: str | None, tool_choice: str | None, applies: bool = True
                    ) -> dict[str, Any]:
    """``tool_choice=`` for the model a URI names, when it has that setting (else a warning)."""
    if not tool_choice or not applies or not uri:
        return {}
    if not uri.startswith(("hf:", "tiny", "openai:")):  # the backends that have the setting
        warn(f"{uri} takes no --tool-choice; ignored")
        return {}
    return {"tool_choice": tool_choice}


PLACEMENT = ("device", "dtype")  # where a local model runs, not how a call is made


@dataclass(frozen=True)
class CallOptions:
    """How every model call of a command is bounded and sampled, and where a local model runs.

    ``max_tokens`` is the command's default unless the user gave ``--max-tokens``; the
    other options are None unless given, so a backend keeps its own default for them.
    ``device`` and ``dtype`` reach only local (hf:, tiny) models; a command mixes those with
    servers and simulations, so the others ignore them without a warning.
    """

    max_tokens: int | None = None
    timeout: float | None = None
    temperature: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    device: str | None = None
    dtype: str | None = None
    given: frozenset[str] = frozenset()  # the options the user set on the command line

    @classmethod
    def from_cli(cls, default_max_tokens: int, max_tokens: int | None, timeout: float | None,
                 temperature: float | None, seed: int | None,
                 repetition_penalty: float | None, device: str | None = None,
                 dtype: Dtype | None = None) -> CallOptions:
        """The options as a command got them; ``--dtype`` was checked by its ``Literal`` type
        (and a Python caller's value is checked when the local model is built)."""
        given = {"max_tokens": max_tokens, "timeout": timeout, "temperature": temperature,
                 "seed": seed, "repetition_penalty": repetition_penalty, "device": device,
                 "dtype": dtype}
        return cls(max_tokens=max_tokens or default_max_tokens, timeout=timeout,
                   temperature=temperature, seed=seed, repetition_penalty=repetition_penalty,
                   device=device, dtype=dtype,
                   given=frozenset(k for k, v in given.items() if v is not None))

    def capped(self, max_tokens: int) -> CallOptions:
        """These options with a lower default token limit (``--max-tokens`` still wins)."""
        if "max_tokens" in self.given:
            return self
        return replace(self, max_tokens=min(max_tokens, self.max_tokens or max_tokens))

    def values(self) -> dict[str, Any]:
        names = ("max_tokens", "timeout", "temperature", "seed", "repetition_penalty",
                 *PLACEMENT)
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
            elif name in self.given and name not in PLACEMENT:
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
        shaping = options.given - set(PLACEMENT)
        if shaping:
            warn(f"{uri} answers as recorded; "
                 f"{', '.join(sorted(options_named(shaping)))} do not apply")
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

    return (not isinstance(model, CassetteChatModel)
            and "max_tokens" in getattr(type(model), "model_fields", {}))  # a ranker: none


def warn(line: str) -> None:
    """One warning line on stderr (also under --quiet: it says a result may mislead)."""
    err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, emoji=False,
              soft_wrap=True)


class TaskFailures:
    """Tasks that failed while the others went on: one line each, and the exit status."""

    def __init__(self, noun: str = "task") -> None:
        self.noun = noun  # one of what failed: "task", "document", "task trial"
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
        """Exit 1 with a closing line when some tasks failed (the finished ones are kept):
        ``1 of 1 task failed``, ``2 of 5 tasks failed``."""
        if not self.errors:
            return
        names = ", ".join(list(self.errors)[:5]) + (", ..." if len(self.errors) > 5 else "")
        err.print(f"{len(self.errors)} of {plural(total, self.noun)} failed: {names} ({rerun})",
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


PROGRESS_EVERY = "STEPWISE_PROGRESS_EVERY"  # seconds between progress lines off a terminal


def progress_every() -> float:
    """Seconds between progress lines in a log: STEPWISE_PROGRESS_EVERY, else 10."""
    try:
        return max(0.0, float(os.environ.get(PROGRESS_EVERY) or 10))
    except ValueError:
        return 10.0


def duration(seconds: float) -> str:
    """Seconds as a log line reads them: 42s, 1m05s, 2h03m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def count_text(completed: float, total: float | None, unit: str) -> str:
    """``12/48 simulations``; ``12 simulations`` when the total is not known ahead; nothing
    before anything is counted (a stage that only runs)."""
    if total is None and not completed:
        return ""
    count = f"{int(completed)}" if total is None else f"{int(completed)}/{int(total)}"
    return f"{count} {unit}".rstrip()


def progress_line(description: str, completed: float, total: float | None, unit: str,
                  elapsed: float, left: float | None = None, detail: str = "") -> str:
    """One plain progress line: ``explore: 12/48 simulations, 1m05s elapsed, about 3m20s
    left``, the task's detail in brackets after it."""
    parts = [count_text(completed, total, unit), f"{duration(elapsed)} elapsed"]
    if left is not None:
        parts.append(f"about {duration(left)} left")
    line = f"{description}: " + ", ".join(part for part in parts if part)
    return f"{line} ({detail})" if detail else line


class _CountColumn(ProgressColumn):
    """The bar's count with its unit (a task's ``unit`` field wins) and ``detail`` field."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        count = count_text(task.completed, task.total, task.fields.get("unit", self.unit))
        detail = task.fields.get("detail", "")
        return Text.assemble((count, "progress.download"), ("  " if count and detail else ""),
                             detail)


@dataclass
class _Counted:
    """What ProgressLines knows of one task."""

    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float
    base: tuple[float, float] | None = None  # (time, count) when the total became known
    first: tuple[float, float] | None = None  # (time, count) when the first unit was done

    def moved(self, now: float) -> None:
        """Note the first unit done since ``base``: the rate is measured from there, so the
        setup before it (loading a model, precomputing) is not taken for the units' cost."""
        if self.first is None and self.base is not None and self.completed > self.base[1]:
            self.first = (now, self.completed)

    def left(self, now: float) -> float | None:
        """Seconds left at this session's rate (a resumed run's earlier work not counted);
        none for a task whose units differ in cost (its ``timed`` field false)."""
        if self.total is None or self.base is None or self.completed >= self.total or \
                not self.fields.get("timed", True):
            return None
        since, counted = self.first or self.base
        rate = (self.completed - counted) / (now - since) if now > since else 0.0
        return (self.total - self.completed) / rate if rate > 0 else None


class ProgressLines:
    """Progress as plain lines on stderr, for a log or a pipe, where a live bar shows nothing
    until it ends: every ``every`` seconds a line per task, whether or not it moved (so a
    slow stage still shows it is alive), and a closing one for a task that ran that long.

    Takes the calls the commands make on a rich ``Progress``.
    """

    def __init__(self, unit: str = "", every: float = 10.0, disable: bool = False) -> None:
        self.unit, self.every, self.disable = unit, every, disable
        self.console = err
        self._tasks: dict[int, _Counted] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._next_id = 0

    def __enter__(self) -> Self:
        if not self.disable:
            self._ticker = threading.Thread(target=self._tick, name="progress-lines",
                                            daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            for task_id in list(self._tasks):
                self.remove_task(task_id)

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> int:
        now = time.monotonic()
        with self._lock:
            task_id = self._next_id
            self._next_id += 1
            self._tasks[task_id] = _Counted(description, total, completed, fields, now,
                                            (now, completed) if total is not None else None)
            return task_id

    def update(self, task_id: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None,
               **fields: Any) -> None:
        """As rich's: a None argument leaves that part as it was."""
        now = time.monotonic()
        with self._lock:
            task = self._tasks[task_id]
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            if total is not None and total != task.total:
                task.total = total
                task.base, task.first = (now, task.completed), None
            task.moved(now)
            if description is not None:
                task.description = description
            task.fields.update(fields)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: int) -> None:
        """Drop a task, with its closing line when it ran long enough to have had lines."""
        with self._lock:
            task = self._tasks.pop(task_id)
            if time.monotonic() - task.started >= self.every:
                self._print(task)

    def _tick(self) -> None:
        while not self._stop.wait(max(self.every, 0.05)):
            with self._lock:
                for task in self._tasks.values():
                    self._print(task)

    def _print(self, task: _Counted) -> None:
        if self.disable:
            return
        now = time.monotonic()
        _say(progress_line(task.description, task.completed, task.total,
                           task.fields.get("unit", self.unit), now - task.started,
                           task.left(now), task.fields.get("detail", "")))


def progress_bar(unit: str = "", *, transient: bool = True,
                 disable: bool = False) -> Progress | ProgressLines:
    """A long-running command's progress, counted in ``unit``: a live bar on a terminal;
    in a log or a pipe, plain lines (ProgressLines; none under --quiet there, where they
    would stay).

    A task's ``detail`` field follows its count, its ``unit`` field replaces ``unit``.
    """
    if err.is_terminal:
        return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        _CountColumn(unit), TimeElapsedColumn(), console=err,
                        transient=transient, disable=disable)
    return ProgressLines(unit, every=progress_every(), disable=disable or state["quiet"])
