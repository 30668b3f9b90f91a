"""Bad options, bad files and bad command lines end in one clear line, and a refused start
leaves nothing behind that would refuse the corrected command."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import cli_errors

runner = CliRunner()
BOX = set("╭╮╰╯│─")

from .conftest import short_dataset


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def assert_one_error(done, *fragments: str) -> str:
    """Exit 2, one ``error:`` line holding every fragment, no box, no traceback."""
    assert done.exit_code == 2, (done.exit_code, done.output)
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not BOX & set(done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One short simulated document (8 lines): a search of it takes well under a second."""
    return short_dataset(tmp_path_factory.mktemp("synth"))


def explore_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "4",
            "--out", str(out), *extra]


# -- out-of-range options: one line naming the option, exit 2, nothing written -------------

EXPLORE_RANGES = [
    ("--simulations", "0", "at least 1"), ("--per-step", "0", "at least 1"),
    ("--width", "1", "at least 2"), ("--parallel", "0", "at least 1"),
    ("--c", "-1", "at least 0"), ("--early-stop", "0", "at least 1"),
    ("--act-samples", "0", "at least 1"), ("--min-visits", "0", "at least 1"),
    ("--min-delta-q", "-0.5", "at least 0"), ("--page-sentences", "0", "at least 1"),
    ("--workers", "0", "at least 1"), ("--max-concurrent", "0", "at least 1"),
    ("--max-tokens", "0", "at least 1"), ("--timeout", "0", "at least 0.1"),
    ("--temperature", "-1", "at least 0"), ("--repetition-penalty", "0", "at least 0.01"),
]
LOOP_RANGES = [
    ("--rounds", "0", "at least 1"), ("--simulations", "0", "at least 1"),
    ("--per-step", "0", "at least 1"), ("--page-sentences", "0", "at least 1"),
    ("--max-steps", "0", "at least 1"), ("--lr", "0", "greater than 0"),
    ("--beta", "-1", "greater than 0"), ("--sft-weight", "-1", "at least 0"),
    ("--lora", "0", "at least 1"), ("--eval-frac", "1", "less than 1"),
    ("--max-tokens", "0", "at least 1"),
]
TRAIN_RANGES = [
    ("--beta", "0", "greater than 0"), ("--sft-weight", "-0.1", "at least 0"),
    ("--lora", "0", "at least 1"), ("--max-steps", "0", "at least 1"),
    ("--eval-frac", "-0.1", "at least 0"), ("--eval-frac", "1.5", "less than 1"),
    ("--lr", "-0.001", "greater than 0"), ("--batch-size", "0", "at least 1"),
    ("--max-length", "0", "at least 1"),
]
RANGES = ([("explore", *case) for case in EXPLORE_RANGES]
          + [("loop", *case) for case in LOOP_RANGES]
          + [("train", *case) for case in TRAIN_RANGES])


def command_line(command: str, dataset: Path, out: Path) -> list[str]:
    if command == "explore":
        return explore_args(dataset, out)
    if command == "loop":
        return ["loop", str(dataset), "--out", str(out)]
    return ["train", "dpo", "--pairs", str(dataset), "-m", "tiny", "--out", str(out)]


@pytest.mark.parametrize(("command", "option", "value", "bound"), RANGES,
                         ids=[f"{c}{o}={v}" for c, o, v, _ in RANGES])
def test_an_out_of_range_option_is_one_line_naming_it(command, option, value, bound, dataset,
                                                      tmp_path):
    out = tmp_path / "out"
    done = runner.invoke(app, [*command_line(command, dataset, out), option, value])
    got = str(int(float(value))) if float(value).is_integer() else value
    assert_one_error(done, f"'{option}'", f"must be {bound}", f"got {got}")
    assert not out.exists()


# Options checked by typer itself: the same wording, before any file is read or written.
TYPER_RANGES = [
    (["pages", "doc.en"], "--page-sentences"), (["pages", "doc.en"], "--max-chars"),
    (["translate", "doc.en", "-m", "sim:translator"], "--page-sentences"),
    (["translate", "doc.en", "-m", "sim:translator"], "--max-chars"),
    (["demo"], "--docs"), (["demo"], "--simulations"), (["demo"], "--max-steps"),
    (["sim", "make"], "--docs"), (["sim", "make"], "--gap"),
    (["explore", "d.jsonl", "-m", "sim:translator"], "--threads"),
]


@pytest.mark.parametrize(("args", "option"), TYPER_RANGES,
                         ids=[f"{args[0]}{option}" for args, option in TYPER_RANGES])
def test_a_count_below_one_is_refused_by_its_range(args, option, tmp_path):
    out = tmp_path / "out"
    done = runner.invoke(app, [*args, "--out", str(out), option, "0"]
                         if args[0] != "pages" else [*args, option, "0"])
    assert done.stderr.splitlines()[-1] == (
        f"error: Invalid value for '{option}': must be at least 1, got 0")
    assert_one_error(done)
    assert not out.exists()


def test_a_settings_error_reaching_the_boundary_names_the_field_as_an_option():
    class Settings(BaseModel):
        max_rounds: int = Field(1, ge=1)

    command = typer.Typer()

    @command.command()
    @cli_errors
    def run(rounds: int = 0) -> None:
        Settings(max_rounds=rounds)

    done = runner.invoke(command, ["--rounds", "0"])
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [
        "error: Invalid value for '--max-rounds': must be at least 1, got 0"]


# -- usage errors: the usage, then one error line; help the ordinary way ------------------

USAGE_ERRORS = [
    (["explore", "d.jsonl"], "explore [OPTIONS] DATASET", "Missing option '--model' / '-m'."),
    (["explore", "-m", "sim:translator", "--out", "o"], "explore [OPTIONS] DATASET",
     "Missing argument 'DATASET'."),
    (["explore", "d.jsonl", "-m", "sim:translator", "--out", "o", "--bogus"],
     "explore [OPTIONS] DATASET", "No such option: --bogus"),
    (["explore", "d.jsonl", "-m", "sim:translator", "--out", "o", "--simulations", "many"],
     "explore [OPTIONS] DATASET", "Invalid value for '--simulations': 'many' is not a whole"),
    (["train", "dpo", "--model", "tiny"], "train dpo [OPTIONS]", "Missing option '--pairs'."),
    (["tree", "run"], "tree [OPTIONS] RUN TASK", "Missing argument 'TASK'."),
    (["bogus"], "stepwise [OPTIONS] COMMAND", "No such command 'bogus'."),
]


@pytest.mark.parametrize(("args", "usage", "message"), USAGE_ERRORS,
                         ids=[" ".join(args[:2]) + f" {i}" for i, (args, *_) in
                              enumerate(USAGE_ERRORS)])
def test_a_usage_error_is_the_usage_and_one_error_line(args, usage, message):
    done = runner.invoke(app, args)
    assert_one_error(done, message)
    assert done.stderr.splitlines()[0].startswith("Usage: stepwise ")
    assert usage in done.stderr.splitlines()[0]


def every_command() -> list[list[str]]:
    def walk(command, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("path", every_command(), ids=lambda path: " ".join(path) or "stepwise")
def test_help_shows_flags_and_arguments_as_click_does(path):
    done = runner.invoke(app, [*path, "--help"])
    assert done.exit_code == 0, done.output
    usage = next(line for line in done.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "[bold]" not in done.stdout, done.stdout
    assert "<bool>" not in done.stdout, done.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    first_words = " ".join((command.help or "").split()[:3])
    assert first_words in " ".join(done.stdout.split())  # the command's own text renders
    for param in command.params:
        if param.param_type_name == "argument":
            assert param.name.upper() in usage


def test_a_flag_shows_without_a_type():
    done = runner.invoke(app, ["train", "dpo", "--help"])
    line = next(line for line in done.stdout.splitlines() if "--json" in line)
    assert "Print train.json" in line and "<" not in line


# -- inputs that are no text, paths holding NUL -------------------------------------------


def binary(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(128, 256)))
    return path


def test_a_binary_or_foreign_encoded_input_is_one_line_naming_file_and_line(dataset, tmp_path):
    data = binary(tmp_path / "data.jsonl")
    latin = tmp_path / "doc.txt"
    latin.write_bytes("Un café.\nDeux crème brûlée.\n".encode("latin-1"))
    cases = [
        (explore_args(data, tmp_path / "e"), f"{data}:1: not UTF-8 text (byte 0x89",
         tmp_path / "e"),
        (["loop", str(data), "--out", str(tmp_path / "l")], f"{data}:1: not UTF-8",
         tmp_path / "l"),
        (["loop", str(dataset), "--heldout", str(data), "--out", str(tmp_path / "h")],
         f"{data}:1: not UTF-8", tmp_path / "h"),
        (["translate", str(latin), "-m", "sim:echo", "--src", "fr", "--tgt", "en",
          "--out", str(tmp_path / "t")], f"{latin}:1: not UTF-8 text (byte 0xe9 at column 7)",
         tmp_path / "t"),
    ]
    for args, message, out in cases:
        assert_one_error(runner.invoke(app, args), message)
        assert not out.exists(), args


NUL_PATHS = [
    (lambda d, o: explore_args(Path(f"{d}\0x"), o), "'DATASET'"),
    (lambda d, o: explore_args(d, Path(f"{o}\0x")), "'--out'"),
    (lambda d, o: ["loop", str(d), "--heldout", f"{d}\0", "--out", str(o)], "'--heldout'"),
    (lambda d, o: ["pages", f"{d}\0"], "'DOCUMENT'"),
    (lambda d, o: ["train", "dpo", "--pairs", f"{d}\0", "-m", "tiny", "--out", str(o)],
     "'--pairs'"),
]


@pytest.mark.parametrize(("args", "option"), NUL_PATHS, ids=[o for _, o in NUL_PATHS])
def test_a_path_holding_nul_is_one_line_naming_the_option(args, option, dataset, tmp_path):
    out = tmp_path / "out"
    assert_one_error(runner.invoke(app, args(dataset, out)), f"Invalid value for {option}",
                     "holds a NUL character")
    assert not out.exists()


def test_an_id_that_would_leave_the_output_folder_is_refused_before_any_page(dataset,
                                                                              tmp_path):
    row = json.loads(dataset.read_text("utf-8"))
    bad = tmp_path / "data.jsonl"
    bad.write_text(json.dumps({**row, "id": "../outside"}) + "\n", "utf-8")
    done = runner.invoke(app, ["translate", str(bad), "-m", "sim:translator",
                               "--out", str(tmp_path / "t")])
    assert done.exit_code != 0
    refusal = (f"error: {bad}: line 1: id '../outside' has a '..' part, and an id names the "
               "document's output files; give it a plain name")
    assert error_lines(done.stderr) == [refusal]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


# -- run files tampered with between a run and its --resume -------------------------------


@pytest.fixture(scope="module")
def finished_run(dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    done = runner.invoke(app, explore_args(dataset, run, "--simulations", "3"))
    assert done.exit_code == 0, done.output
    return run


def _edit_event(line: int, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(run: Path) -> None:
        (run / "trees" / "synth-000.json").unlink()  # the task replays its log on resume
        log = run / "events" / "synth-000.jsonl"
        lines = log.read_text("utf-8").split("\n")
        event = json.loads(lines[line - 1])
        change(event)
        lines[line - 1] = json.dumps(event)
        log.write_text("\n".join(lines), "utf-8")
    return tamper


def _binary_event(run: Path) -> None:
    (run / "trees" / "synth-000.json").unlink()
    log = run / "events" / "synth-000.jsonl"
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(b"\n".join([lines[0], b"\xff\xfe\x00 torn?", *lines[1:]]))


def _set_rewards_node(event: dict) -> None:
    event["batch"][0]["rewards"][0][0] = 999


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


TAMPERED = [
    ("tree-binary", _write("trees/synth-000.json", b"\xff\xfe\x00\x01"),
     "trees/synth-000.json:1: not UTF-8 text"),
    ("tree-no-visits", _write("trees/synth-000.json", json.dumps(
        {"directed": True, "multigraph": False, "graph": {}, "nodes": [{"id": 0}],
         "links": []}).encode()), "trees/synth-000.json: not a search tree"),
    ("tree-a-list", _write("trees/synth-000.json", b"[1, 2]"),
     "trees/synth-000.json: not a search tree"),
    ("tree-not-json", _write("trees/synth-000.json", b"{\"nodes\": ["),
     "trees/synth-000.json:1: not JSON"),
    ("event-unknown-node", _edit_event(2, _set_rewards_node),
     "events/synth-000.jsonl:2: not an iteration of this search (KeyError: 999)"),
    ("event-no-batch", _edit_event(3, lambda event: event.pop("batch")),
     "events/synth-000.jsonl:3: not an iteration of this search"),
    ("event-binary-line", _binary_event, "events/synth-000.jsonl:2: not an iteration"),
    ("run-json-binary", _write("run.json", b"\xff\xfe{}"), "run.json:1: not UTF-8 text"),
    ("run-json-a-list", _write("run.json", b"[]"), "run.json: not a run's settings"),
    ("summary-binary", _write("summary.json", b"\x00\xff"), "summary.json:1: not UTF-8"),
]


@pytest.mark.parametrize(("tamper", "message"), [case[1:] for case in TAMPERED],
                         ids=[case[0] for case in TAMPERED])
def test_a_tampered_run_file_on_resume_is_one_line_naming_it(tamper, message, finished_run,
                                                             dataset, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    tamper(run)
    done = runner.invoke(app, explore_args(dataset, run, "--simulations", "3", "--resume"))
    assert done.exit_code != 0, done.output
    assert f"{run}/{message}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    named = [line for line in done.stderr.splitlines() if message in line]
    assert len(named) == 1 and named[0].startswith(("error:", "failed: synth-000: "))


# -- a refused start blocks nothing --------------------------------------------------------


def test_a_refused_explore_leaves_nothing_and_the_corrected_one_runs(dataset, tmp_path):
    out = tmp_path / "run"
    refused = runner.invoke(app, explore_args(dataset, out, "--per-step", "2"))
    assert_one_error(refused, "--per-step 2 is below the 8 actions")
    assert not out.exists()
    corrected = runner.invoke(app, explore_args(dataset, out, "--per-step", "8"))
    assert corrected.exit_code == 0, corrected.output
    assert (out / "pairs.jsonl").is_file() and (out / "trees" / "synth-000.json").is_file()


def test_a_refused_loop_leaves_nothing_behind(dataset, tmp_path, tiny_path):
    out = tmp_path / "loop"
    overlap = "a held-out set must be documents never explored"
    for extra, message in ((["--per-step", "2"], "--per-step 2 is below the 8 actions"),
                           (["--heldout", str(dataset)], overlap)):
        refused = runner.invoke(app, ["loop", str(dataset), "--out", str(out),
                                      "--start", f"hf:{tiny_path}", "--page-sentences", "4",
                                      *extra])
        assert_one_error(refused, message)
        assert not out.exists()
