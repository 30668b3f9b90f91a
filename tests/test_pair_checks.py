"""The pair checks read a pairs file with the JSONL reader's lines and errors: a line that
is no JSON object is one dropped pair, named ``file:line``, and the other lines go on."""

from __future__ import annotations

import json

import pytest

from stepwise.train.pair_checks import PairsError, check_pairs

PAIR = {"prompt": [{"role": "user", "content": "Which modules?"}],
        "chosen": [{"role": "assistant", "content": "entities"}],
        "rejected": [{"role": "assistant", "content": "none"}]}


def test_bad_lines_are_dropped_pairs_named_by_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = json.dumps(PAIR, ensure_ascii=False).encode()
    spread = json.dumps({**PAIR, "meta": {"note": "a\u2028b"}}, ensure_ascii=False).encode()
    path.write_bytes(b"\n".join([good, b'{"prompt": ', b"", b"[1, 2]", b'{"a": "\xff"}',
                                 spread + b"\r"]) + b"\n")
    kept, report = check_pairs(path)
    assert len(kept) == 2 and kept[1]["meta"]["note"] == "a\u2028b"  # read whole
    assert (report.rows, report.kept) == (5, 2)
    assert report.dropped == {"not JSON": 1, "not a JSON object": 1, "not UTF-8 text": 1}
    assert report.examples == {"not JSON": [2], "not a JSON object": [4], "not UTF-8 text": [5]}
    assert [line.split(": ")[0] for line in report.unreadable] == [
        f"{path}:2", f"{path}:4", f"{path}:5"]
    assert report.unreadable[1] == f"{path}:4: not a JSON object (a list)"
    assert report.as_dict()["unreadable_lines"] == report.unreadable
    assert "1 × not JSON (line 2)" in report.lines()


def test_a_file_with_no_json_object_is_refused_naming_its_first_bad_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just words\nmore words\n", encoding="utf-8")
    with pytest.raises(PairsError, match=rf"not JSONL .*{path.name}:1: not JSON"):
        check_pairs(path)
    with pytest.raises(PairsError, match="no such pairs file"):
        check_pairs(tmp_path / "absent.jsonl")
