"""The LongMT run engine called directly: resume, one failed document, and the CLI's results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.longmt.prompts import SUMMARY_HEAD
from stepwise.agents.longmt.runs import DocumentDone, compare_policies
from stepwise.cli import app
from stepwise.documents.sources import SourceDocument
from stepwise.errors import ModelBackendError, StepwiseError
from stepwise.testing.responding import RespondingChatModel
from tests.test_longmt_agent import echo_translator

DOCS = [SourceDocument(id="doc0", src=["Anna met Boris.", "They talked.", "It rained."],
                       ref=["T:Anna met Boris.", "T:They talked.", "T:It was raining."],
                       src_lang="en", tgt_lang="de"),
        SourceDocument(id="doc1", src=["Plain one.", "Plain two.", "Zed three.", "Plain four."],
                       ref=["T:Plain one.", "T:Plain two.", "T:Zed three.", "T:Plain 4."],
                       src_lang="en", tgt_lang="de")]
SETTINGS = {"none": {"model": "echo"}, "all": {"model": "echo"}}


def agents(respond=None) -> dict[str, LongMTAgent]:
    model = RespondingChatModel(respond=respond or echo_translator())
    return {policy: LongMTAgent(model, policy=policy, page_sentences=2) for policy in SETTINGS}


def run(out: Path | None, respond=None, **options) -> tuple[object, list[DocumentDone]]:
    seen: list[DocumentDone] = []
    report = compare_policies(agents(respond), DOCS, out, settings=SETTINGS,
                              on_document=seen.append, **options)
    return report, seen


def failing_on_zed(messages, tools):
    """The echo translator, except that the summary of a page with "Zed" fails."""
    prompt = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
    if prompt.startswith(SUMMARY_HEAD) and "Zed" in prompt:
        raise ModelBackendError("model server X: HTTP 503 after 2 retries: busy")
    return echo_translator()(messages, tools)


def no_seconds(value):
    """``value`` without its timings, which differ from run to run."""
    if isinstance(value, dict):
        return {k: no_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [no_seconds(v) for v in value]
    return value


def test_a_rerun_keeps_the_finished_documents_fresh_redoes_them_and_new_settings_are_refused(tmp_path):
    first, seen = run(tmp_path)
    assert {done.status for done in seen} == {"translated"}
    assert (tmp_path / "all" / "doc1.de").read_text().splitlines() == [
        "T:Plain one.", "T:Plain two.", "T:Zed three.", "T:Plain four."]

    def bug(messages, tools):  # a kept document asks the model nothing
        raise AssertionError("a finished document was translated again")

    again, seen = run(tmp_path, bug)
    assert [(d.label, d.document.id, d.status, d.pages_run) for d in seen] == [
        ("none", "doc0", "kept", 0), ("none", "doc1", "kept", 0),
        ("all", "doc0", "kept", 0), ("all", "doc1", "kept", 0)]
    assert again.rows == first.rows and again.rows["all"]["documents"] == 2
    redone = run(tmp_path, fresh=True)[1]
    assert [d.status for d in redone] == ["translated"] * 4
    seen.clear()
    other = {**SETTINGS, "none": {"model": "other"}}
    with pytest.raises(StepwiseError) as refused:  # not silently redone: refused, first
        compare_policies(agents(bug), DOCS, tmp_path, settings=other, on_document=seen.append)
    assert str(refused.value) == (
        f"{tmp_path / 'none' / 'doc0.done.json'}: doc0 was translated with other settings "
        '(model: saved "echo", asked "other"); --fresh redoes it, or use another --out or the '
        "same options")
    assert seen == []  # nothing ran, nothing was kept
    compare_policies(agents(), DOCS, tmp_path, settings=other, fresh=True, on_document=seen.append)
    assert [d.status for d in seen] == ["translated"] * 4


def test_settings_saved_as_json_match_the_same_settings_asked_again(tmp_path):
    """A tuple asked is the list saved: the same settings keep the document."""
    settings = {policy: {"model": "echo", "tools": ("a", "b")} for policy in SETTINGS}
    compare_policies(agents(), DOCS, tmp_path, settings=settings)
    seen: list[DocumentDone] = []
    compare_policies(agents(), DOCS, tmp_path, settings=settings, on_document=seen.append)
    assert {d.status for d in seen} == {"kept"}


def test_a_failing_model_fails_one_document_and_a_rerun_redoes_only_it(tmp_path):
    report, seen = run(tmp_path, failing_on_zed)
    for policy in SETTINGS:
        run_ = report.policies[policy]
        assert list(run_.failed) == ["doc1"] and list(run_.documents) == ["doc0"]
        assert run_.failed["doc1"].startswith("page 2 of 2, update_summaries: model server X")
        assert run_.row["documents"] == 1 and run_.row["failed_documents"] == run_.failed
        trace = (tmp_path / policy / "doc1.failed.trace.jsonl").read_text().splitlines()
        assert [json.loads(line)["page"] for line in trace] == [0, 1]
        assert not (tmp_path / policy / "doc1.done.json").exists()
    failed = [d for d in seen if d.status == "failed"]
    assert [(d.document.id, d.pages, d.pages_run) for d in failed] == [("doc1", 2, 1)] * 2
    assert all(isinstance(d.exc, ModelBackendError) for d in failed)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["all"]["failed"] == report.policies["all"].failed

    again, seen = run(tmp_path)
    assert [(d.document.id, d.status) for d in seen] == [("doc0", "kept"),
                                                          ("doc1", "translated")] * 2
    assert again.failed == 0 and not list(tmp_path.rglob("*.failed.trace.jsonl"))


def test_a_bug_in_stepwise_is_no_documents_failure_and_raises(tmp_path):
    def bug(messages, tools):
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        run(tmp_path, bug)
    assert not (tmp_path / "scores.json").exists()


def test_without_a_folder_nothing_is_written_or_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, seen = run(None)
    second, seen_again = run(None)
    assert [d.status for d in seen + seen_again] == ["translated"] * 8
    assert no_seconds(second.to_json()) == no_seconds(first.to_json())
    assert not list(tmp_path.iterdir())


def test_the_engine_gives_what_the_translate_command_prints_and_writes(tmp_path, monkeypatch):
    monkeypatch.setattr("stepwise.cli.translate.model_from_uri",
                        lambda *args, **kwargs: RespondingChatModel(respond=echo_translator()))
    folder = tmp_path / "docs"
    folder.mkdir()
    for doc in DOCS:
        (folder / f"{doc.id}.en").write_text("\n".join(doc.src) + "\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["translate", str(folder), "--src", "en", "--tgt", "de",
                                    "-m", "openai:http://127.0.0.1:9/v1", "--compare",
                                    "none,all", "--page-sentences", "2", "--out",
                                    str(tmp_path / "cli"), "--json"])
    assert done.exit_code == 0, done.stderr
    docs = [doc.model_copy(update={"ref": None}) for doc in DOCS]  # the folder has none
    report = compare_policies(agents(), docs, tmp_path / "engine", settings=SETTINGS)
    assert no_seconds(report.rows) == no_seconds(json.loads(done.stdout))
    written = [json.loads((tmp_path / run_ / "scores.json").read_text())
               for run_ in ("cli", "engine")]
    assert no_seconds(written[0]) == no_seconds(written[1]) == no_seconds(report.to_json())
    cli, engine = tmp_path / "cli", tmp_path / "engine"
    for name in ("all/doc1.de", "all/doc1.memory.json"):
        assert (cli / name).read_text() == (engine / name).read_text()
    traces = [[json.loads(line) for line in (root / "all" / "doc1.trace.jsonl").open()]
              for root in (cli, engine)]
    assert no_seconds(traces[0]) == no_seconds(traces[1]) and len(traces[0]) == 2
