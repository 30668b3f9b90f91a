"""Every example command line a ``stepwise ... --help`` shows can be typed as shown.

Help texts write their examples as ``[bold]stepwise ...[/bold]``. Each one must name a
real command, parse (its options exist, its values convert) and name only files that
exist where it points into the repository; the fast offline ones (simulated models) are
also run for real in a temporary folder.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stepwise.cli import app

from .conftest import REPO

EXAMPLE = re.compile(r"\[bold\](stepwise\s.*?)\[/bold\]", re.DOTALL)
RUN_FOR_REAL = {"pages", "sim make", "think"}  # fast when every model they name is sim:
MODEL_OPTIONS = {"--model", "-m", "--policy-model", "--think-model"}
ROOT = typer.main.get_command(app)


def commands(command=ROOT, path: tuple[str, ...] = ()) -> Iterator[tuple[str, object]]:
    """Every command and subcommand of the app, by the words that call it."""
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def examples() -> list[tuple[str, str]]:
    """(command, example line) for every example in every command's help."""
    return [(name, " ".join(found.split())) for name, command in commands()
            for found in EXAMPLE.findall(command.help or "")]


def resolve(words: list[str]) -> tuple[str, object, list[str]]:
    """The command an example calls, by its words, and the arguments it gives it."""
    assert words[0] == "stepwise", words
    command, path, args = ROOT, [], words[1:]
    while getattr(command, "commands", None) and args:
        assert args[0] in command.commands, f"no command {' '.join([*path, args[0]])!r}"
        path.append(args[0])
        command = command.commands[args.pop(0)]
    return " ".join(path), command, args


def named_paths(command, args: list[str]) -> list[Path]:
    """The files and folders the example gives the command (parsing it as a run would)."""
    values = command.make_context(command.name, list(args)).params.values()
    return [v for value in values
            for v in (value if isinstance(value, tuple | list) else [value])
            if isinstance(v, Path)]


def in_repo(path: Path) -> bool:
    """Whether a relative path points into one of the repository's folders."""
    return not path.is_absolute() and len(path.parts) > 1 and (REPO / path.parts[0]).is_dir()


EXAMPLES = examples()


def test_examples_are_found_in_the_help_texts():
    helped = {name for name, _ in EXAMPLES}
    assert {"record", "replay", "pages", "sim make", "eval", "think"} <= helped
    for name, command in commands():
        if "Example" in (command.help or ""):
            assert name in helped, f"{name}: an Example: with no [bold]stepwise ...[/bold]"


@pytest.mark.parametrize(("name", "line"), EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_help_example_parses_and_names_files_that_exist(name, line):
    _, command, args = resolve(shlex.split(line))
    paths = named_paths(command, args)
    missing = [str(p) for p in paths if in_repo(p) and not (REPO / p).exists()]
    assert not missing, f"stepwise {name} --help: {line!r} names missing {missing}"


def runnable(line: str) -> bool:
    called, _, args = resolve(shlex.split(line))
    models = [value for option, value in itertools.pairwise(args) if option in MODEL_OPTIONS]
    return called in RUN_FOR_REAL and all(model.startswith("sim:") for model in models)


RUNNABLE = [(name, [line for n, line in EXAMPLES if n == name and runnable(line)])
            for name in dict.fromkeys(n for n, _ in EXAMPLES)]
RUNNABLE = [(name, lines) for name, lines in RUNNABLE if lines]


@pytest.mark.parametrize(("name", "lines"), RUNNABLE, ids=[name for name, _ in RUNNABLE])
def test_fast_offline_help_examples_run(name, lines, tmp_path, monkeypatch):
    """A help's runnable examples, in order, in one folder (a later one may read what an
    earlier one wrote), with copies of the repository files they name."""
    monkeypatch.chdir(tmp_path)
    for line in lines:
        _, command, args = resolve(shlex.split(line))
        for path in named_paths(command, args):
            if in_repo(path) and (REPO / path).is_file():
                (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / path, tmp_path / path)
        done = CliRunner().invoke(app, shlex.split(line)[1:])
        assert done.exit_code == 0, f"{line}\n{done.output}"


def test_help_paragraphs_wrap_to_the_terminal_and_examples_keep_their_lines():
    from stepwise.cli.common import reflowed

    text = """First line.

    One paragraph written
    over three lines
    in the source.

    Example:
      stepwise one
      stepwise two
    """
    assert reflowed(text) == ("First line.\n\nOne paragraph written over three lines in the "
                              "source.\n\nExample:\n  stepwise one\n  stepwise two")
    done = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["loop", "--help"])
    assert done.exit_code == 0
    said = [line.strip() for line in done.output.splitlines()]
    # a docstring line break no longer ends a printed line early: no line of one word or two
    prose = said[said.index("Iterative preference training on the LongMT module decisions.")
                 + 1:said.index("Example:")]
    assert len([line for line in prose if line]) >= 4
    assert all(len(line) > 40 for line in prose[1:-2] if line)
