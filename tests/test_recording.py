"""Recording appends one line per exchange, and a torn last line does not break replay."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest

import stepwise.llm.cassette as cassette_module
from stepwise.errors import CassetteError
from stepwise.llm import ReplayChatModel, from_uri, record
from stepwise.llm.cassette import Cassette


@pytest.fixture()
def rewrites(monkeypatch) -> list[int]:
    """The size of every whole-file write a cassette makes, in bytes."""
    sizes: list[int] = []
    real_write = cassette_module.write_atomic

    def counting_write(path, text):
        sizes.append(len(text.encode("utf-8")))
        real_write(path, text)

    monkeypatch.setattr(cassette_module, "write_atomic", counting_write)
    return sizes


def test_recording_n_calls_writes_each_line_once(tmp_path, rewrites):
    """O(N) work: one atomic write (the header and first line, replacing an old cassette),
    then appends that keep the file (same inode) and every byte already written."""
    tape = tmp_path / "c.jsonl"
    tape.write_text('{"stepwise_cassette": 1}\n', "utf-8")  # an old recording, replaced
    recorder = record(from_uri("sim:echo"), str(tape))
    recorder.invoke("q0")
    inode, before = tape.stat().st_ino, tape.read_bytes()
    for i in range(1, 200):
        recorder.invoke(f"q{i}")
        now = tape.read_bytes()
        assert now.startswith(before) and now.count(b"\n") == before.count(b"\n") + 1
        before = now
    assert tape.stat().st_ino == inode  # never replaced by a rewritten copy
    assert len(rewrites) == 1 and rewrites[0] < len(before) / 100
    replay = ReplayChatModel(cassette=str(tape))
    assert len(replay.tape) == 200
    assert [replay.invoke(f"q{i}").content for i in (0, 199)] == ["echo: q0", "echo: q199"]


def test_after_a_failed_append_the_next_call_rewrites_the_file(tmp_path, rewrites,
                                                               monkeypatch):
    tape = tmp_path / "c.jsonl"
    recorder = record(from_uri("sim:echo"), str(tape))
    recorder.invoke("q0")
    real_fsync = os.fsync

    def full_disk(fd):
        monkeypatch.setattr(os, "fsync", real_fsync)  # fails once
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        recorder.invoke("q1")
    recorder.invoke("q2")
    recorder.invoke("q3")
    assert len(rewrites) == 2  # the first call and the one after the failure
    assert len(Cassette.load(tape)) == 4


def test_appends_from_threads_keep_every_line_whole(tmp_path, rewrites):
    tape = tmp_path / "c.jsonl"
    recorder = record(from_uri("sim:echo"), str(tape))
    threads = [threading.Thread(target=lambda n=n: [recorder.invoke(f"t{n}-{i}")
                                                     for i in range(20)]) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = tape.read_text("utf-8").splitlines()
    assert len(lines) == 81 and all(json.loads(line) for line in lines)
    assert len(Cassette.load(tape)) == 80 and len(rewrites) == 1


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path, caplog):
    tape = tmp_path / "c.jsonl"
    recorder = record(from_uri("sim:echo"), str(tape))
    for i in range(3):
        recorder.invoke(f"q{i}")
    tape.write_bytes(tape.read_bytes()[:-40])  # killed while appending the third exchange
    with caplog.at_level(logging.WARNING, logger="stepwise.llm.cassette"):
        replay = ReplayChatModel(cassette=str(tape))
        assert replay.invoke("q1").content == "echo: q1"
    assert len(replay.tape) == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"{tape}:4: the last line is cut off")
    assert "replaying the 2 exchanges before it" in message
    with pytest.raises(CassetteError, match="no recorded answer"):
        replay.invoke("q2")
    # a whole line (it ends in a newline) that is corrupt was written so: still an error
    tape.write_bytes(tape.read_bytes() + b"\n")
    with pytest.raises(CassetteError, match=r"c\.jsonl:4: corrupt cassette line"):
        Cassette.load(tape)
