"""Bad inputs end in one clear line, and nothing the project writes is lost or misread."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import TaskFailures, cli_errors, warn
from stepwise.errors import StepwiseError

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
