"""Files the project writes go through its one atomic writer: readable, synced."""

from __future__ import annotations

import json
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


def test_pictures_go_through_the_same_writer(tmp_path, monkeypatch):
    """The tree picture and the training curves: 0644, synced, no temporary file left."""
    import networkx as nx

    from stepwise.search.view import write_png
    from stepwise.train.curves import write_curves

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    graph = nx.DiGraph()
    graph.add_node(0, depth=0, visits=2, q=0.5, label="root")
    graph.add_node(1, depth=1, visits=1, q=0.4, label="none")
    graph.add_edge(0, 1)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(
        {"step": s, "loss": 0.7, "reward_accuracy": 0.5, "reward_margin": 0.1,
         "logps_chosen": -3.0, "logps_rejected": -3.5}) + "\n" for s in (1, 2)), "utf-8")
    pictures = [write_png(graph, tmp_path / "tree.png"),
                write_curves(metrics, tmp_path / "curves.png")]
    for png in pictures:
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert stat.S_IMODE(png.stat().st_mode) == 0o644
    assert len(synced) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "metrics.jsonl",
                                                          "tree.png"]
