"""Bad inputs end in one clear line, and nothing the project writes is lost or misread."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from stepwise.agents.generative.simulation import STEP_LOG, Simulation
from stepwise.cli import app
from stepwise.cli.common import TaskFailures, cli_errors, warn
from stepwise.documents.sources import load_documents
from stepwise.errors import StepwiseError
from stepwise.jsonl import jsonl_lines
from stepwise.llm import from_uri
from stepwise.llm.replay import ReplayChatModel, record

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
    run = SimpleNamespace(directory=tmp_path, world=SimpleNamespace(step=1))
    Simulation.trim_step_log(run)  # the run holds step 0 only: step 1's line goes
    assert [json.loads(line) for line in jsonl_lines(log.read_text("utf-8"))] == entries[:1]
