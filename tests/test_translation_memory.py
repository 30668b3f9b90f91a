"""LongMT memory: an immutable value that forks for free, and its SQLite store."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import sqlite3

import pytest
from pydantic import ValidationError

import stepwise.memory.store as store_module
from stepwise.errors import StepwiseError
from stepwise.memory.store import MemoryStore, MemoryStoreError
from stepwise.memory.translation import (
    EntityConflict,
    EntityRecord,
    EntityUpdate,
    PageRecord,
    TranslationMemory,
    TranslationMemoryError,
)


def page(number: int, lines: int = 2, tag: str = "") -> PageRecord:
    return PageRecord(number=number,
                      source=tuple(f"Sentence {i} of page {number}{tag}." for i in range(lines)),
                      translation=tuple(f"第{number}页第{i}句{tag}。" for i in range(lines)))


def memory_with(pages: int) -> TranslationMemory:
    memory = TranslationMemory.empty()
    for number in range(pages):
        memory = memory.with_page(page(number)).with_summary(number, f"摘要 {number}")
        memory = memory.with_entities([EntityUpdate(name=f"Person{number}",
                                                    translation=f"人物{number}")], number)
    return memory


# -- records --------------------------------------------------------------------------------

def test_page_record_refuses_unaligned_lines():
    with pytest.raises(ValueError, match="2 source sentences but 1 translations"):
        PageRecord(number=0, source=("a", "b"), translation=("甲",))


def test_records_are_frozen_plain_data():
    record = page(0)
    with pytest.raises(ValidationError):
        record.number = 3
    assert EntityUpdate(name="  Ann ", translation=" 安 ").name == "Ann"
    with pytest.raises(ValueError):
        EntityUpdate(name="   ", translation="安")
    assert EntityRecord(name="A", translation="甲", first_page=3, mentions=(5, 3, 1)).mentions \
        == (1, 3, 5)


# -- pages and summaries --------------------------------------------------------------------

def test_pages_append_and_read_back():
    memory = memory_with(3)
    assert memory.page_count == 3
    assert [p.number for p in memory.pages] == [0, 1, 2]
    assert memory.pages[1] == page(1)
    assert dict(memory.summaries) == {0: "摘要 0", 1: "摘要 1", 2: "摘要 2"}
    assert TranslationMemory.empty().page_count == 0 and TranslationMemory() == \
        TranslationMemory.empty()


@pytest.mark.parametrize("number", [0, 2, 5])
def test_a_page_out_of_order_is_refused(number):
    memory = memory_with(1)
    with pytest.raises(TranslationMemoryError, match=f"page {number} cannot follow 1"):
        memory.with_page(page(number))
    assert issubclass(TranslationMemoryError, StepwiseError)
    assert issubclass(TranslationMemoryError, ValueError)


def test_a_summary_needs_a_finished_page():
    memory = memory_with(2)
    for bad in (2, -1):
        with pytest.raises(TranslationMemoryError, match=f"page {bad}"):
            memory.with_summary(bad, "nope")
    assert memory.with_summary(1, "new").summaries[1] == "new"
    assert memory.summaries[1] == "摘要 1"


def test_adding_a_page_shares_the_pages_it_did_not_touch():
    m1 = memory_with(3)
    m2 = m1.with_page(page(3)).with_summary(3, "s").with_entities(
        [EntityUpdate(name="New", translation="新")], 3)
    assert m2.pages[0] is m1.pages[0] and m2.pages[2] is m1.pages[2]
    assert m2.entities["Person1"] is m1.entities["Person1"]
    assert m1.page_count == 3 and "New" not in m1.entities and 3 not in m1.summaries


# -- entities -------------------------------------------------------------------------------

def test_an_entity_conflict_keeps_the_first_translation_and_is_logged(caplog):
    memory = memory_with(2).with_entities([EntityUpdate(name="Ann", translation="安")], 0)
    with caplog.at_level(logging.INFO, logger="stepwise.memory.translation"):
        after = memory.with_entities([EntityUpdate(name="Ann", translation="安妮")], 1)
    assert after.entities["Ann"].translation == "安"
    assert after.entities["Ann"].mentions == (0,)
    assert list(after.conflicts) == [EntityConflict(name="Ann", kept="安", proposed="安妮",
                                                    page=1)]
    assert "Ann" in caplog.text and "安妮" in caplog.text
    assert not memory.conflicts


def test_replace_applies_a_new_translation_and_keeps_the_first_page():
    memory = memory_with(3).with_entities([EntityUpdate(name="Ann", translation="安")], 0)
    after = memory.with_entities(
        [EntityUpdate(name="Ann", translation="安妮", type="person", replace=True)], 2)
    ann = after.entities["Ann"]
    assert (ann.translation, ann.first_page, ann.mentions, ann.type) == \
        ("安妮", 0, (0, 2), "person")
    assert not after.conflicts and memory.entities["Ann"].translation == "安"


def test_mentions_accumulate_without_repeats_and_fill_empty_fields():
    memory = memory_with(4).with_entities([EntityUpdate(name="Ann", translation="安")], 0)
    memory = memory.with_entities([EntityUpdate(name="Ann", translation=" 安 ", type="person"),
                                   EntityUpdate(name="Ann", translation="安")], 2)
    memory = memory.with_entities([EntityUpdate(name="Ann", translation="安",
                                                type="place", description="a friend")], 2)
    memory = memory.mention(["Ann", "Nobody"], 1).mention(["Ann"], 3).mention(["Ann"], 3)
    ann = memory.entities["Ann"]
    assert ann.mentions == (0, 1, 2, 3)
    assert (ann.type, ann.description) == ("person", "a friend")  # filled, not overwritten
    assert "Nobody" not in memory.entities and not memory.conflicts


def test_entities_may_be_seen_on_the_page_being_translated_but_no_later():
    memory = memory_with(2)
    assert memory.with_entities([EntityUpdate(name="A", translation="甲")], 2) \
        .entities["A"].first_page == 2
    with pytest.raises(TranslationMemoryError, match="page 3"):
        memory.with_entities([EntityUpdate(name="A", translation="甲")], 3)


# -- forks ----------------------------------------------------------------------------------

def test_forks_evolve_independently_and_leave_the_parent_unchanged():
    parent = memory_with(2).with_entities([EntityUpdate(name="Ann", translation="安")], 1)
    before = parent.to_dict()
    left = parent.fork().with_page(page(2, tag="L")).with_entities(
        [EntityUpdate(name="Ann", translation="安娜")], 2)
    right = parent.fork().with_page(page(2, tag="R")).with_entities(
        [EntityUpdate(name="Ann", translation="安娜", replace=True),
         EntityUpdate(name="Bob", translation="鲍勃")], 2)
    assert parent.to_dict() == before and parent.page_count == 2
    assert left.pages[2].source[0].endswith("L.") and right.pages[2].source[0].endswith("R.")
    assert left.entities["Ann"].translation == "安" and len(left.conflicts) == 1
    assert right.entities["Ann"].translation == "安娜" and not right.conflicts
    assert "Bob" in right.entities and "Bob" not in left.entities
    assert left != right


def test_fork_copy_and_deepcopy_are_the_same_value():
    memory = memory_with(3)
    assert memory.fork() is memory and copy.copy(memory) is memory
    assert copy.deepcopy({"memory": memory})["memory"] is memory
    with pytest.raises(AttributeError):
        memory._pages = None
    assert pickle.loads(pickle.dumps(memory)) == memory


# -- plain data -----------------------------------------------------------------------------

def test_to_dict_from_dict_round_trip_with_chinese_text():
    memory = memory_with(3).with_entities(
        [EntityUpdate(name="Person0", translation="别人"),
         EntityUpdate(name="张三", translation="Zhang San", type="人物", description="主角")], 2)
    data = memory.to_dict()
    text = json.dumps(data, ensure_ascii=False)
    again = TranslationMemory.from_dict(json.loads(text))
    assert again == memory and hash(again) == hash(memory)
    assert again.to_dict() == data
    assert set(data) == {"pages", "summaries", "entities", "conflicts"}
    assert data["summaries"]["0"] == "摘要 0" and "张三" in text


@pytest.mark.parametrize("garbage, message", [
    (None, "must be a mapping"),
    ([1, 2], "must be a mapping"),
    ({"pages": "many"}, "pages must be a list"),
    ({"pages": [{"number": 0, "source": ["a"]}]}, r"pages\[0\]\.translation"),
    ({"pages": [{"number": 1, "source": [], "translation": []}]}, "page 1 stored at position 0"),
    ({"summaries": {"zero": "s"}}, "not a page number"),
    ({"summaries": {"0": "s"}}, "unknown pages"),
    ({"entities": [{"name": "A"}]}, r"entities\[0\]"),
    ({"entities": [{"name": "A", "translation": "甲", "first_page": 0}] * 2}, "twice"),
    ({"pages": [], "extra": 1}, "unknown keys"),
])
def test_from_dict_on_garbage_is_one_clear_error(garbage, message):
    with pytest.raises(TranslationMemoryError, match=message) as raised:
        TranslationMemory.from_dict(garbage)
    assert "\n" not in str(raised.value)


# -- reading helpers ------------------------------------------------------------------------

def story() -> TranslationMemory:
    memory = TranslationMemory.empty()
    memory = memory.with_page(PageRecord(number=0, source=("Ann met Annabel.", "They smiled."),
                                         translation=("安遇见了安娜贝尔。", "她们笑了。")))
    memory = memory.with_page(PageRecord(number=1, source=("Bob left.",),
                                         translation=("鲍勃走了。",)))
    memory = memory.with_summary(1, "Bob leaves.")
    return memory.with_entities([EntityUpdate(name="Annabel", translation="安娜贝尔"),
                                 EntityUpdate(name="Ann", translation="安"),
                                 EntityUpdate(name="Bob", translation="鲍勃"),
                                 EntityUpdate(name="北京", translation="Beijing")], 0)


def test_summary_lines_and_sentence_pairs():
    memory = story()
    assert memory.summary_lines([0, 1, 7, -1, 1]) == [(1, "Bob leaves.")]
    assert memory.sentence_pairs([1, 0, 9, -1]) == [
        (1, 0, "Bob left.", "鲍勃走了。"),
        (0, 0, "Ann met Annabel.", "安遇见了安娜贝尔。"),
        (0, 1, "They smiled.", "她们笑了。"),
    ]


def test_find_entities_prefers_exact_names_then_ignores_case():
    memory = story().with_entities([EntityUpdate(name="bob", translation="小鲍")], 1)
    found = memory.find_entities(["bob", "BOB", "annabel", "Nobody", "北京"])
    assert [(e.name, e.translation) for e in found] == \
        [("bob", "小鲍"), ("Bob", "鲍勃"), ("Annabel", "安娜贝尔"), ("北京", "Beijing")]


def test_entities_in_matches_whole_words_and_chinese_substrings():
    memory = story()
    assert [e.name for e in memory.entities_in("Annabel waved.")] == ["Annabel"]
    assert [e.name for e in memory.entities_in("Bob and Ann's dog")] == ["Bob", "Ann"]
    assert memory.entities_in("Bobby and Annie") == []
    assert [e.name for e in memory.entities_in("他们去了北京。")] == ["北京"]


# -- SQLite store ---------------------------------------------------------------------------

def counting_page_writes(path) -> sqlite3.Connection:
    """Triggers in the store's file that count every page row written."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE page_writes (number INTEGER);
        CREATE TRIGGER page_insert AFTER INSERT ON pages
            BEGIN INSERT INTO page_writes VALUES (NEW.number); END;
        CREATE TRIGGER page_update AFTER UPDATE ON pages
            BEGIN INSERT INTO page_writes VALUES (NEW.number); END;
    """)
    return db


def page_writes(db: sqlite3.Connection) -> list[int]:
    return [n for (n,) in db.execute("SELECT number FROM page_writes ORDER BY rowid")]


def test_save_after_every_page_then_load_equals_the_memory(tmp_path):
    path = tmp_path / "nested" / "memory.sqlite"
    with MemoryStore(path) as store:
        assert not path.exists()  # opened on first use
        assert store.load("doc") is None and store.documents() == []
        memory = TranslationMemory.empty()
        for number in range(5):
            memory = memory.with_page(page(number)).with_summary(number, f"摘要 {number}")
            memory = memory.with_entities([EntityUpdate(name="Ann", translation="安"),
                                           EntityUpdate(name="Ann", translation="安妮")], number)
            store.save("doc", memory)
            assert store.load("doc") == memory
    with MemoryStore(path) as reopened:
        assert reopened.load("doc") == memory
        assert reopened.documents() == ["doc"]
    stored = sqlite3.connect(path).execute("SELECT source_json FROM pages").fetchone()[0]
    assert "Sentence" in stored
    text = sqlite3.connect(path).execute("SELECT json FROM entities").fetchone()[0]
    assert "安" in text  # ensure_ascii=False


def test_saving_a_longer_memory_writes_only_the_new_pages(tmp_path):
    path = tmp_path / "memory.sqlite"
    with MemoryStore(path) as store:
        store.save("doc", memory_with(3))
        counter = counting_page_writes(path)
        store.save("doc", memory_with(5))
        assert page_writes(counter) == [3, 4]
        store.save("doc", memory_with(5).with_summary(0, "changed"))
        assert page_writes(counter) == [3, 4]
        assert store.load("doc").summaries[0] == "changed"
    with MemoryStore(path) as reopened:  # no cached copy: the stored pages are compared
        reopened.save("doc", memory_with(6).with_summary(0, "changed"))
        assert page_writes(counter) == [3, 4, 5]
        assert reopened.load("doc") == memory_with(6).with_summary(0, "changed")


def test_saving_a_memory_that_does_not_extend_the_stored_one_replaces_it(tmp_path):
    path = tmp_path / "memory.sqlite"
    with MemoryStore(path) as store:
        store.save("doc", memory_with(4))
        store.save("doc", memory_with(2))  # fewer pages
        assert store.load("doc") == memory_with(2)
        different = TranslationMemory.empty().with_page(page(0, tag="!")).with_page(page(1))
        store.save("doc", different.with_page(page(2)))  # page 0 differs
        assert store.load("doc") == different.with_page(page(2))
        rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        assert rows == 3


def test_two_documents_are_independent_and_can_be_deleted(tmp_path):
    with MemoryStore(tmp_path / "m.sqlite") as store:
        store.save("b", memory_with(2))
        store.save("a", memory_with(3))
        store.save("empty", TranslationMemory.empty())
        assert store.documents() == ["a", "b", "empty"]
        assert store.load("a") == memory_with(3) and store.load("b") == memory_with(2)
        assert store.load("empty") == TranslationMemory.empty()
        store.delete("a")
        store.delete("missing")
        assert store.documents() == ["b", "empty"] and store.load("a") is None
        assert store.load("b") == memory_with(2)


def test_another_writer_is_noticed(tmp_path):
    path = tmp_path / "m.sqlite"
    with MemoryStore(path) as first, MemoryStore(path) as second:
        first.save("doc", memory_with(3))
        second.save("doc", memory_with(1))
        first.save("doc", memory_with(2))  # its cached copy (3 pages) is stale
        assert second.load("doc") == memory_with(2)


def test_a_save_that_fails_midway_leaves_the_previous_save(tmp_path, monkeypatch):
    path = tmp_path / "m.sqlite"
    with MemoryStore(path) as store:
        store.save("doc", memory_with(2))

        def crash(*args):
            raise RuntimeError("crash while writing entities")

        monkeypatch.setattr(store_module, "_entity_row", crash)
        with pytest.raises(RuntimeError, match="crash"):
            store.save("doc", memory_with(4))  # pages 2 and 3 were written before the crash
        monkeypatch.undo()
        assert store.load("doc") == memory_with(2)
    with MemoryStore(path) as reopened:
        assert reopened.load("doc") == memory_with(2)


def test_store_errors_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MemoryStoreError, match="cannot use"):
        MemoryStore(blocker / "m.sqlite").documents()
    with pytest.raises(MemoryStoreError, match="document id"):
        MemoryStore(tmp_path / "m.sqlite").save("", TranslationMemory.empty())
    path = tmp_path / "damaged.sqlite"
    with MemoryStore(path) as store:
        store.save("doc", memory_with(1))
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE entities SET json = '{oops'")
    with pytest.raises(MemoryStoreError, match="damaged"):
        MemoryStore(path).load("doc")


# -- benchmark ------------------------------------------------------------------------------

def test_memory_fork_benchmark_reports_both_sides():
    from benchmarks import memory_fork

    result = memory_fork.run(quick=True)
    figures, baseline = result["figures"], result["baseline"]
    assert set(figures["ours_us"]) == set(baseline["us"]) == {"10", "40", "160"}
    assert all(value > 0 for value in [*figures["ours_us"].values(), *baseline["us"].values()])
    assert result["ratio"]["value"] > 0
