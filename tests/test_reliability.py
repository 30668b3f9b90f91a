"""Bad inputs end in one clear line, and nothing the project writes is lost or misread."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from stepwise.agents.generative import step_log
from stepwise.agents.generative.simulation import STEP_LOG
from stepwise.cli import app
from stepwise.cli.common import TaskFailures, cli_errors, warn
from stepwise.documents.sources import load_documents
from stepwise.errors import CassetteError, StepwiseError
from stepwise.jsonl import jsonl_lines
from stepwise.llm import from_uri
from stepwise.llm.cassette import Cassette
from stepwise.llm.replay import ReplayChatModel, record

from .conftest import REPO, json_objects

runner = CliRunner()
MARKUP_NAME = "doc[/].en"  # read as markup, "[/]" closes a tag never opened


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


# -- 1. printed text is never read as markup ------------------------------------------------


def test_a_missing_file_named_like_markup_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["pages", MARKUP_NAME])
    assert result.exit_code == 2, result.output
    lines = error_lines(result.output)
    assert len(lines) == 1 and MARKUP_NAME in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_file_named_like_markup_is_shown_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    document = tmp_path / MARKUP_NAME  # a file "].en" in a folder "doc["
    document.parent.mkdir()
    document.write_text("[red]A first line[/] :thumbs_up: here.\nA second line.\n", "utf-8")
    result = runner.invoke(app, ["pages", MARKUP_NAME])
    assert result.exit_code == 0, result.output
    assert MARKUP_NAME in result.output
    assert "[red]A first line[/]" in result.output and ":thumbs_up:" in result.output


@pytest.mark.parametrize("text", ["server said [/] and stopped", "[red]not red[/red]",
                                  "code :abc: :thumbs_up:", "[bold"])
def test_error_warning_and_failure_lines_keep_their_text(text, capsys):
    @cli_errors
    def fails() -> None:
        raise StepwiseError(text)

    with pytest.raises(typer.Exit) as stop:
        fails()
    assert stop.value.exit_code == 2
    warn(text)
    TaskFailures().add(f"task {text}", text)
    printed = capsys.readouterr().err
    assert f"error: {text}" in printed
    assert f"warning: {text}" in printed
    assert f"failed: task {text}: {text}" in printed


# -- 4. JSONL lines split on "\n" only -------------------------------------------------------

LINE_BREAKING = "one\u2028two\u2029three\x85four"  # str.splitlines() splits at each


def test_jsonl_lines_split_on_newline_only():
    text = json.dumps({"text": LINE_BREAKING}, ensure_ascii=False) + "\r\n\n{}\n"
    assert jsonl_lines(text) == [json.dumps({"text": LINE_BREAKING}, ensure_ascii=False),
                                 "", "{}"]
    assert jsonl_lines("") == [] and jsonl_lines("{}") == ["{}"]


def test_a_recording_holding_line_separators_replays(tmp_path):
    cassette = tmp_path / "tape.jsonl"
    prompt = f"say {LINE_BREAKING}"
    recorded = record(from_uri("sim:echo"), str(cassette)).invoke(prompt).text
    assert LINE_BREAKING in recorded and "\u2028" in cassette.read_text("utf-8")
    assert ReplayChatModel(cassette=str(cassette)).invoke(prompt).text == recorded


def test_a_dataset_row_holding_line_separators_loads(tmp_path):
    dataset = tmp_path / "dataset.jsonl"
    rows = [{"id": "d1", "src": [f"A {LINE_BREAKING} line.", "Two."], "src_lang": "en",
             "tgt_lang": "de"}, {"id": "d2", "src": "Three.", "src_lang": "en", "tgt_lang": "de"}]
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    docs = load_documents(dataset)
    assert [d.id for d in docs] == ["d1", "d2"]
    assert docs[0].src == [f"A {LINE_BREAKING} line.", "Two."]


def test_the_step_log_keeps_lines_holding_line_separators(tmp_path):
    entries = [{"step": 0, "said": LINE_BREAKING}, {"step": 1, "said": "later"}]
    log = tmp_path / STEP_LOG
    log.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    step_log.repair(log, {}, steps=1)  # the run holds step 0 only: step 1's line goes
    assert [json.loads(line) for line in jsonl_lines(log.read_text("utf-8"))] == entries[:1]


# -- 12. a malformed cassette is its scenario's FAIL row ------------------------------------

HEADER = '{"stepwise_cassette": 1}'
REQUEST = {"messages": [{"role": "user", "content": "hi"}], "tools": [], "params": {}}
MALFORMED = {  # exchanges that parse as JSON but replay could not answer from
    "no generations": {"key": "k", "request": REQUEST, "result": {}},
    "unknown message type": {"key": "k", "request": REQUEST, "result": {
        "generations": [{"message": {"type": "bogus", "data": {}}}]}},
    "list key": {"key": ["k"], "request": REQUEST, "result": {"generations": []}},
    "request without messages": {"key": "k", "request": {}, "result": {"generations": []}},
    "generations not a list": {"key": "k", "request": REQUEST, "result": {"generations": 3}},
}


@pytest.mark.parametrize("exchange", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_exchange_is_a_cassette_error_naming_file_and_line(exchange, tmp_path):
    tape = tmp_path / "tape.jsonl"
    tape.write_text(f"{HEADER}\n{json.dumps(exchange)}\n", "utf-8")
    with pytest.raises(CassetteError, match=r"tape\.jsonl:2: "):
        Cassette.load(tape)


def test_replaying_a_folder_shows_a_malformed_cassette_as_one_fail_row(tmp_path):
    folder = tmp_path / "scenarios"
    (folder / "cassettes").mkdir(parents=True)
    shutil.copy(REPO / "scenarios" / "chat-echo.yaml", folder / "a-good.yaml")
    shutil.copy(REPO / "scenarios" / "cassettes" / "chat-echo.jsonl", folder / "cassettes")
    broken = (folder / "a-good.yaml").read_text("utf-8").replace(
        "name: chat-echo", "name: broken").replace("chat-echo.jsonl", "broken.jsonl")
    (folder / "b-broken.yaml").write_text(broken, "utf-8")
    (folder / "cassettes" / "broken.jsonl").write_text(
        f"{HEADER}\n{json.dumps(MALFORMED['unknown message type'])}\n", "utf-8")
    (folder / "c-good.yaml").write_text(
        (folder / "a-good.yaml").read_text("utf-8").replace("name: chat-echo", "name: again"))

    result = runner.invoke(app, ["replay", str(folder), "--json"])
    assert result.exit_code == 1, result.output
    rows = json_objects(result.output)
    assert [(r["name"], r["passed"]) for r in rows] == [
        ("chat-echo", True), ("broken", False), ("again", True)]
    assert "broken.jsonl:2: malformed exchange" in rows[1]["error"]


# -- 2. a scenario's cassette stays inside the scenario's folder -----------------------------


def escaping_scenario(tmp_path, cassette: str):
    """A scenario in tmp/scenarios/ whose cassette is ``cassette``, and a file outside."""
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    precious = tmp_path / "precious.jsonl"
    precious.write_text("keep me\n", "utf-8")
    text = (REPO / "scenarios" / "chat-echo.yaml").read_text("utf-8")
    scenario = folder / "escape.yaml"
    scenario.write_text(text.replace("cassettes/chat-echo.jsonl", cassette), "utf-8")
    return scenario, precious


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_record_refuses_a_cassette_outside_the_scenario_folder(kind, tmp_path):
    if kind == "symlink":
        (tmp_path / "scenarios").mkdir()
        (tmp_path / "scenarios" / "cassettes").symlink_to(tmp_path, target_is_directory=True)
    cassette = {"parent": "../precious.jsonl", "absolute": str(tmp_path / "precious.jsonl"),
                "symlink": "cassettes/precious.jsonl"}[kind]
    scenario, precious = escaping_scenario(tmp_path, cassette)

    result = runner.invoke(app, ["record", str(scenario), "--model", "sim:echo"])
    assert result.exit_code == 2, result.output
    lines = error_lines(result.output)
    assert len(lines) == 1 and "cassette" in lines[0] and "escape.yaml:15" in lines[0], lines
    assert precious.read_text("utf-8") == "keep me\n"

    replayed = runner.invoke(app, ["replay", str(scenario), "--json"])
    assert replayed.exit_code == 1
    row = json.loads(replayed.output)
    assert not row["passed"] and "cassette" in row["error"] and "escape.yaml:15" in row["error"]


def test_record_writes_a_cassette_inside_the_scenario_folder(tmp_path):
    scenario, precious = escaping_scenario(tmp_path, "cassettes/../new.jsonl")
    result = runner.invoke(app, ["record", str(scenario), "--model", "sim:echo"])
    assert result.exit_code == 0, result.output
    assert (scenario.parent / "new.jsonl").is_file()
    assert precious.read_text("utf-8") == "keep me\n"
