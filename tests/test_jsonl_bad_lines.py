"""A checker reads a JSONL file past its bad lines: ``read_jsonl(on_bad_line=...)`` hands
each one's error over and goes on, where every other reader stops at the first."""

from __future__ import annotations

import pytest

from stepwise.jsonl import JsonlError, read_jsonl


def test_every_bad_line_is_handed_over_with_its_number_and_the_good_rows_are_read(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n\n[1, 2]\n{"a": "caf\xe9"}\r\n{"a": 5}\n')
    bad: list[JsonlError] = []
    assert read_jsonl(path, on_bad_line=bad.append) == [(1, {"a": 1}), (6, {"a": 5})]
    assert [(error.line, error.why) for error in bad] == [
        (2, "not JSON (Expecting value)"), (4, "not a JSON object (a list)"),
        (5, "not UTF-8 text (byte 0xe9 at column 11)")]
    assert str(bad[0]) == f"{path}:2: not JSON (Expecting value)"
    with pytest.raises(JsonlError, match=r"rows\.jsonl:2: not JSON"):
        read_jsonl(path)  # without it, the first bad line is still the error


def test_a_torn_last_line_goes_to_the_log_callback_when_there_is_one(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n[2]\n{"a": "\xe2\x80')  # the last write cut inside a character
    bad: list[JsonlError] = []
    torn: list[int] = []
    assert read_jsonl(path, on_torn_last_line=torn.append, on_bad_line=bad.append) == [
        (1, {"a": 1})]
    assert [error.line for error in bad] == [2] and torn == [3]
    bad.clear()
    assert read_jsonl(path, on_bad_line=bad.append) == [(1, {"a": 1})]
    assert [error.line for error in bad] == [2, 3]

