"""The one SQLite connection and transaction shape every store uses."""

from __future__ import annotations

import pytest

from stepwise.transactions import connect_wal, transaction


def rows(db) -> list[int]:
    return [value for (value,) in db.execute("SELECT x FROM t ORDER BY x")]


def test_a_connection_is_autocommit_in_wal_mode_with_its_folder_made(tmp_path):
    db = connect_wal(tmp_path / "deep" / "run.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert db.isolation_level is None and not db.in_transaction
    full = connect_wal(tmp_path / "full.sqlite", synchronous=None)
    assert full.execute("PRAGMA synchronous").fetchone() == (2,)  # SQLite's FULL


def test_a_block_commits_or_undoes_exactly_what_it_wrote(tmp_path):
    db = connect_wal(tmp_path / "run.sqlite")
    db.execute("CREATE TABLE t (x INTEGER)")
    with transaction(db, "BEGIN IMMEDIATE"):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("a failing step")
    with transaction(db):  # a nested block is a savepoint: its failure undoes only itself
        db.execute("INSERT INTO t VALUES (3)")
        with pytest.raises(RuntimeError), transaction(db):
            db.execute("INSERT INTO t VALUES (4)")
            raise RuntimeError("a failing part")
    assert rows(db) == [1, 3] and not db.in_transaction


def test_a_look_that_is_not_kept_leaves_the_database_as_it_was(tmp_path):
    db = connect_wal(tmp_path / "run.sqlite")
    db.execute("CREATE TABLE t (x INTEGER)")
    with transaction(db, "BEGIN IMMEDIATE", keep=False):
        db.execute("INSERT INTO t VALUES (1)")  # retrieval marking memories as accessed
        assert rows(db) == [1]
    assert rows(db) == [] and not db.in_transaction
    with transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
        with transaction(db, keep=False):
            db.execute("INSERT INTO t VALUES (3)")
    assert rows(db) == [2]
