"""Every JSONL file is read by ``stepwise.jsonl.read_jsonl``: a bad line is ``file:line``,
and only an append-only log reads past a last line a kill cut off."""

from __future__ import annotations

import json

import pytest

from stepwise.documents.sources import load_documents
from stepwise.errors import CassetteError, StepwiseError
from stepwise.jsonl import JsonlError, read_jsonl
from stepwise.llm import from_uri, record
from stepwise.llm.cassette import Cassette
from stepwise.search.events import EventLog
from stepwise.train.curves import read_metrics

ROW = {"id": "d1", "src": "Hi.", "src_lang": "en", "tgt_lang": "zh"}


def test_rows_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n  \n{"b": "x\xe2\x80\xa8y"}\n')
    assert read_jsonl(path) == [(1, {"a": 1}), (4, {"b": "x\u2028y"})]


@pytest.mark.parametrize(("line", "why"), [
    (b'{"a": ', "not JSON (Expecting value)"),
    (b"[1, 2]", "not a JSON object (a list)"),
    (b'{"a": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at column 11)"),
])
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, line, why):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n' + line + b'\n{"a": 3}\n')
    with pytest.raises(JsonlError) as caught:
        read_jsonl(path)
    assert str(caught.value) == f"{path}:2: {why}"
    assert (caught.value.line, caught.value.why) == (2, why)


def test_a_torn_last_line_is_read_past_only_when_the_caller_says_so(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": "\xe2\x80')  # cut inside a character
    with pytest.raises(JsonlError, match=r"log\.jsonl:3: not UTF-8"):
        read_jsonl(path)
    torn: list[int] = []
    assert read_jsonl(path, on_torn_last_line=torn.append) == [(1, {"a": 1}), (2, {"a": 2})]
    assert torn == [3]
    # a whole last line that lacks only its newline is no torn line
    path.write_bytes(b'{"a": 1}\n{"a": 2}')
    assert read_jsonl(path, on_torn_last_line=torn.append) == [(1, {"a": 1}), (2, {"a": 2})]
    assert torn == [3]
    # a bad line followed by a newline was written so: an error even for a log
    path.write_bytes(b'{"a": 1}\n{"a": \n')
    with pytest.raises(JsonlError, match=r"log\.jsonl:2: not JSON"):
        read_jsonl(path, on_torn_last_line=torn.append)


def test_a_dataset_names_its_bad_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(ROW) + "\n[1]\n", "utf-8")
    with pytest.raises(StepwiseError, match=r"data\.jsonl:2: not a JSON object \(a list\)"):
        load_documents(path)
    path.write_text(json.dumps(ROW) + '\n{"id": "d2", "src"', "utf-8")  # a dataset is whole
    with pytest.raises(StepwiseError, match=r"data\.jsonl:2: not JSON"):
        load_documents(path)


def test_training_metrics_name_a_bad_line_and_read_past_a_torn_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo', "utf-8")  # killed mid-write
    assert read_metrics(path) == [{"step": 1, "loss": 0.5}]
    path.write_text('{"step": 1, "loss": 0.5}\nnan\n', "utf-8")
    with pytest.raises(StepwiseError, match=r"metrics\.jsonl:2: not JSON"):
        read_metrics(path)


def test_a_cassette_torn_inside_a_character_is_replayed_up_to_it(tmp_path):
    tape = tmp_path / "c.jsonl"
    recorder = record(from_uri("sim:echo"), str(tape))
    for text in ("q0", "q1", "日本語"):
        recorder.invoke(text)
    data = tape.read_bytes()
    cut = data.rindex("日".encode()) + 1  # the kill lands inside a UTF-8 character
    tape.write_bytes(data[:cut])
    assert len(Cassette.load(tape)) == 2
    tape.write_bytes(data[:cut] + b"\n")
    with pytest.raises(CassetteError, match=r"c\.jsonl:4: corrupt cassette line \(not UTF-8"):
        Cassette.load(tape)


def test_an_event_log_keeps_a_whole_last_line_and_ends_it(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"i": 0}\n{"i": 1}', "utf-8")  # killed just before the newline
    log = EventLog(path)
    assert log.read() == [{"i": 0}, {"i": 1}]
    log.append({"i": 2})
    assert log.read() == [{"i": 0}, {"i": 1}, {"i": 2}]
    path.write_text('{"i": 0}\n[1]\n', "utf-8")
    with pytest.raises(StepwiseError, match=r"events\.jsonl:2: not an iteration this search "
                                            r"logged \(not a JSON object"):
        log.read()
