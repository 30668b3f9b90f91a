"""``stepwise translate`` end to end: a real document replayed, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stepwise.cli import app
from tests.conftest import REPO

SCENARIO = REPO / "scenarios" / "longmt"
CASSETTE = SCENARIO / "cassettes" / "longmt-real-document.jsonl"
DOC = SCENARIO / "data" / "doc0.en"
REF = SCENARIO / "data" / "doc0.zh"


def translate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["translate", *args])
    return result.exit_code, result.stdout, result.stderr


def replayed(out: Path, *extra: str) -> tuple[int, str, str]:
    return translate(str(DOC), "--src", "en", "--tgt", "zh", "-m", f"replay:{CASSETTE}",
                     "--policy", "auto", "--page-sentences", "8", "--ref", str(REF),
                     "--out", str(out), *extra)


def test_a_real_document_writes_translation_trace_memory_and_scores(tmp_path):
    code, stdout, stderr = replayed(tmp_path, "--json")
    assert code == 0, stderr
    scores = json.loads(stdout)
    assert set(scores) == {"auto"}
    assert scores["auto"]["d_bleu"] > 60 and "bleu" in scores["auto"] and "chrf" in scores["auto"]
    folder = tmp_path / "auto"
    lines = (folder / "doc0.zh").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(REF.read_text(encoding="utf-8").splitlines())
    trace = [json.loads(line) for line in (folder / "doc0.trace.jsonl").read_text().splitlines()]
    assert [step["page"] for step in trace] == list(range(10))
    assert {"modules", "context_tokens", "translation", "seconds"} <= set(trace[1])
    memory = json.loads((folder / "doc0.memory.json").read_text(encoding="utf-8"))
    assert len(memory["pages"]) == 10
    report = json.loads((tmp_path / "scores.json").read_text())
    assert report["auto"]["documents"]["doc0"]["pages"] == 10


def test_finished_documents_are_kept_and_settings_changes_redo_them(tmp_path):
    assert replayed(tmp_path, "--json")[0] == 0
    done = tmp_path / "auto" / "doc0.done.json"
    done.write_text(done.read_text().replace('"pages": 10', '"pages": 10, "marker": 1'))
    code, _, _ = replayed(tmp_path, "--json")
    assert code == 0 and "marker" in done.read_text()  # reused, not redone
    code, _, _ = replayed(tmp_path, "--json", "--fresh")
    assert code == 0 and "marker" not in done.read_text()


def test_a_document_saved_with_other_settings_is_refused_until_fresh(tmp_path):
    """Not silently redone: one line naming the document, the setting and --fresh."""
    def echo(*extra: str) -> tuple[int, str, str]:
        return translate(str(DOC), "--src", "en", "--tgt", "zh", "-m", "sim:echo", "--policy",
                         "none", "--out", str(tmp_path), "--json", *extra)

    assert echo()[0] == 0
    done = tmp_path / "none" / "doc0.done.json"
    saved = done.read_text()
    code, _, stderr = echo("--page-sentences", "4")
    assert code == 2 and "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"error: {done}: doc0 was translated with other settings "
                           "(page_sentences: saved 10, asked 4); --fresh redoes it")
    assert done.read_text() == saved  # refused before anything ran
    assert echo("--page-sentences", "4", "--fresh")[0] == 0
    assert json.loads(done.read_text())["settings"]["page_sentences"] == 4


def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path):
    empty = tmp_path / "empty.en"
    empty.write_text("\n \n")
    cases = [
        ([str(empty), "--src", "en", "--tgt", "zh", "-m", "sim:echo"], "empty"),
        ([str(DOC), "--src", "en", "--tgt", "zh", "-m", "sim:echo", "--policy", "maybe"],
         "unknown policy"),
        ([str(DOC), "--src", "xx", "--tgt", "zh", "-m", "sim:echo"], "unknown language code"),
        ([str(DOC), "--src", "en", "--tgt", "zh", "-m", "sim:echo", "--policy", "oracle"],
         "oracle and markers policies need a world"),
        ([str(DOC), "-m", "sim:echo"], "--src and --tgt"),
        ([str(tmp_path / "nope.en"), "--src", "en", "--tgt", "zh", "-m", "sim:echo"],
         "no such file"),
    ]
    for args, message in cases:
        code, _, stderr = translate(*args, "--out", str(tmp_path / "out"))
        assert code == 2, (args, stderr)
        assert message in stderr and "Traceback" not in stderr


def test_a_reference_with_other_line_counts_is_scored_at_document_level(tmp_path):
    short = tmp_path / "short.zh"
    short.write_text("\n".join(REF.read_text(encoding="utf-8").splitlines()[:-3]) + "\n",
                     encoding="utf-8")
    code, stdout, stderr = translate(
        str(DOC), "--src", "en", "--tgt", "zh", "-m", f"replay:{CASSETTE}", "--policy", "auto",
        "--page-sentences", "8", "--ref", str(short), "--out", str(tmp_path), "--json")
    assert code == 0, stderr
    row = json.loads(stdout)["auto"]
    assert "d_bleu" in row and "bleu" not in row and row["unaligned_refs"] == 1
    report = json.loads((tmp_path / "scores.json").read_text())
    assert "scored at document level only" in report["auto"]["documents"]["doc0"]["unaligned_ref"]
