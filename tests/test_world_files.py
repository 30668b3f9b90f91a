"""``sim make`` writes its files with the project's one atomic writer: readable, synced."""

from __future__ import annotations

import os
import stat

from stepwise.sim.translation import make_documents, write_dataset


def test_world_files_are_readable_and_synced(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    write_dataset(make_documents(1, 0), tmp_path / "out")
    for name in ("dataset.jsonl", "world.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name
    assert len(synced) >= 2  # each file reaches the disk before it is renamed into place
