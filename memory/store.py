"""Translation memory on disk: one SQLite file holds the memories of many documents.

A long document is saved after every page, so a save must not rewrite the document.
``save`` compares the memory with the one last saved (kept by this store and checked
against a version token in the file, so another writer is noticed) and writes only new
pages, summaries and entities that differ, and new conflicts, in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from stepwise.errors import StepwiseError
from stepwise.memory.translation import (
    EntityRecord,
    PageRecord,
    TranslationMemory,
    TranslationMemoryError,
)
from stepwise.transactions import connect_wal, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (doc_id TEXT NOT NULL, number INTEGER NOT NULL,
    source_json TEXT NOT NULL, translation_json TEXT NOT NULL, PRIMARY KEY (doc_id, number));
CREATE TABLE IF NOT EXISTS summaries (doc_id TEXT NOT NULL, page INTEGER NOT NULL,
    text TEXT NOT NULL, PRIMARY KEY (doc_id, page));
CREATE TABLE IF NOT EXISTS entities (doc_id TEXT NOT NULL, name TEXT NOT NULL,
    json TEXT NOT NULL, PRIMARY KEY (doc_id, name));
CREATE TABLE IF NOT EXISTS conflicts (doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    json TEXT NOT NULL, PRIMARY KEY (doc_id, seq));
"""
ROW_TABLES = ("pages", "summaries", "entities", "conflicts")


class MemoryStoreError(StepwiseError):
    """A memory file that cannot be opened or written, or a stored memory that is damaged."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _page_row(doc_id: str, page: PageRecord) -> tuple[str, int, str, str]:
    return doc_id, page.number, _json(list(page.source)), _json(list(page.translation))


def _entity_row(doc_id: str, entity: EntityRecord) -> tuple[str, str, str]:
    return doc_id, entity.name, _json(entity.model_dump(mode="json"))


def _extends(memory: TranslationMemory, stored: TranslationMemory) -> bool:
    """Whether ``memory`` is ``stored`` with pages and conflicts appended (others may change)."""
    def has_prefix(longer: Any, shorter: Any) -> bool:
        return len(longer) >= len(shorter) and all(
            a is b or a == b for a, b in zip(shorter, longer))

    return has_prefix(memory.pages, stored.pages) and \
        has_prefix(memory.conflicts, stored.conflicts)


class MemoryStore:
    """Translation memories by document id in one SQLite file (WAL), opened on first use.

    ``save`` appends to a stored memory that the new one extends (same pages and
    conflicts, with more at the end). A memory that does not extend it (fewer pages, or
    a stored page or conflict that differs) replaces the document's rows entirely. Either
    way a save is one transaction: a crash mid-save leaves the previous save intact.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._saved: dict[str, tuple[str, TranslationMemory]] = {}  # doc -> version, memory

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                connection = connect_wal(self.path)  # a power cut may lose the last save
                connection.executescript(SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise MemoryStoreError(f"cannot use {self.path} for translation memory: "
                                       f"{exc}") from None
            self._connection = connection
        return self._connection

    @contextmanager
    def _transaction(self, begin: str, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self._db(), begin, "translation_memory") as db:
                yield db
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"cannot {doing} in {self.path}: {exc}") from None

    def save(self, doc_id: str, memory: TranslationMemory) -> None:
        """Store ``memory`` as ``doc_id``, writing only what changed since the stored one."""
        _check_id(doc_id)
        version = uuid.uuid4().hex
        with self._transaction("BEGIN IMMEDIATE", f"save {doc_id!r}") as db:
            row = db.execute("SELECT version FROM documents WHERE doc_id = ?",
                             (doc_id,)).fetchone()
            stored = TranslationMemory.empty() if row is None else \
                self._stored(db, doc_id, row[0])
            if not _extends(memory, stored):
                _delete_rows(db, doc_id)
                stored = TranslationMemory.empty()
            _write_changes(db, doc_id, stored, memory)
            db.execute("INSERT INTO documents VALUES (?, ?) ON CONFLICT (doc_id) "
                       "DO UPDATE SET version = excluded.version", (doc_id, version))
        self._saved[doc_id] = (version, memory)

    def load(self, doc_id: str) -> TranslationMemory | None:
        """The memory stored as ``doc_id``, or None when there is none."""
        _check_id(doc_id)
        with self._transaction("BEGIN", f"load {doc_id!r}") as db:
            row = db.execute("SELECT version FROM documents WHERE doc_id = ?",
                             (doc_id,)).fetchone()
            return None if row is None else self._stored(db, doc_id, row[0])

    def documents(self) -> list[str]:
        """The stored document ids, sorted."""
        with self._transaction("BEGIN", "list documents") as db:
            return [doc for (doc,) in db.execute("SELECT doc_id FROM documents ORDER BY doc_id")]

    def delete(self, doc_id: str) -> None:
        """Forget ``doc_id`` (nothing happens when it is not stored)."""
        _check_id(doc_id)
        with self._transaction("BEGIN IMMEDIATE", f"delete {doc_id!r}") as db:
            _delete_rows(db, doc_id)
            db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        self._saved.pop(doc_id, None)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._saved.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _stored(self, db: sqlite3.Connection, doc_id: str, version: str) -> TranslationMemory:
        """The stored memory: this store's copy when the file still has its version."""
        known = self._saved.get(doc_id)
        if known is not None and known[0] == version:
            return known[1]
        memory = self._read(db, doc_id)
        self._saved[doc_id] = (version, memory)
        return memory

    def _read(self, db: sqlite3.Connection, doc_id: str) -> TranslationMemory:
        rows = {table: db.execute(query, (doc_id,)).fetchall() for table, query in (
            ("pages", ("SELECT number, source_json, translation_json FROM pages "
                       "WHERE doc_id = ? ORDER BY number")),
            ("summaries", "SELECT page, text FROM summaries WHERE doc_id = ? ORDER BY page"),
            ("entities", "SELECT json FROM entities WHERE doc_id = ? ORDER BY name"),
            ("conflicts", "SELECT json FROM conflicts WHERE doc_id = ? ORDER BY seq"),
        )}
        try:
            return TranslationMemory.from_dict({
                "pages": [{"number": number, "source": json.loads(source),
                           "translation": json.loads(translation)}
                          for number, source, translation in rows["pages"]],
                "summaries": {str(page): text for page, text in rows["summaries"]},
                "entities": [json.loads(entity) for (entity,) in rows["entities"]],
                "conflicts": [json.loads(conflict) for (conflict,) in rows["conflicts"]],
            })
        except (ValueError, TranslationMemoryError) as exc:  # JSONDecodeError is a ValueError
            raise MemoryStoreError(f"memory {doc_id!r} in {self.path} is damaged: "
                                   f"{exc}") from None


def _check_id(doc_id: str) -> None:
    if not isinstance(doc_id, str) or not doc_id:
        raise MemoryStoreError(f"a document id is a non-empty string, not {doc_id!r}")


def _delete_rows(db: sqlite3.Connection, doc_id: str) -> None:
    for table in ROW_TABLES:
        db.execute(f"DELETE FROM {table} WHERE doc_id = ?", (doc_id,))


def _write_changes(db: sqlite3.Connection, doc_id: str, stored: TranslationMemory,
                   memory: TranslationMemory) -> None:
    """Write what ``memory`` adds to ``stored``, which it extends.

    Comparing walks the summaries and entities in memory, where unchanged ones are the
    same objects; only new or changed rows are written.
    """
    db.executemany("INSERT INTO pages VALUES (?, ?, ?, ?)",
                   [_page_row(doc_id, page) for page in memory.pages[stored.page_count:]])

    old_summaries, summaries = stored.summaries, memory.summaries
    db.executemany(
        "INSERT INTO summaries VALUES (?, ?, ?) ON CONFLICT (doc_id, page) "
        "DO UPDATE SET text = excluded.text",
        [(doc_id, page, text) for page, text in summaries.items()
         if old_summaries.get(page) != text])
    db.executemany("DELETE FROM summaries WHERE doc_id = ? AND page = ?",
                   [(doc_id, page) for page in old_summaries if page not in summaries])

    old_entities, entities = stored.entities, memory.entities
    db.executemany(
        "INSERT INTO entities VALUES (?, ?, ?) ON CONFLICT (doc_id, name) "
        "DO UPDATE SET json = excluded.json",
        [_entity_row(doc_id, entity) for name, entity in entities.items()
         if not (old_entities.get(name) is entity or old_entities.get(name) == entity)])
    db.executemany("DELETE FROM entities WHERE doc_id = ? AND name = ?",
                   [(doc_id, name) for name in old_entities if name not in entities])

    start = len(stored.conflicts)
    db.executemany("INSERT INTO conflicts VALUES (?, ?, ?)",
                   [(doc_id, start + offset, _json(conflict.model_dump(mode="json")))
                    for offset, conflict in enumerate(memory.conflicts[start:])])
