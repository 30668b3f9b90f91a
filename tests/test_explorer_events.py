"""The event log writes each line through to the OS at once, and fsyncs on a time bound and
on close rather than after every line (an fsync costs milliseconds)."""

from __future__ import annotations

import os

import pytest

from stepwise.search import events
from stepwise.search.events import EventLog


@pytest.fixture
def fsyncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(events.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


def test_lines_are_readable_at_once_and_fsynced_on_close(tmp_path, fsyncs):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, sync_seconds=3600)
    for i in range(50):
        log.append({"i": i, "batch": []})
        assert len(path.read_bytes().splitlines()) == i + 1  # a kill now would lose nothing
    assert fsyncs == []
    log.close()
    assert len(fsyncs) == 1
    log.close()  # closing twice is harmless
    log.append({"i": 50, "batch": []})  # and a closed log opens again to append
    log.close()
    assert [e["i"] for e in EventLog(path).read()] == list(range(51)) and len(fsyncs) == 2


def test_an_elapsed_sync_interval_fsyncs_the_next_line(tmp_path, fsyncs):
    log = EventLog(tmp_path / "events.jsonl", sync_seconds=0)
    log.append({"i": 0})
    log.append({"i": 1})
    assert len(fsyncs) == 2
    log.close()
