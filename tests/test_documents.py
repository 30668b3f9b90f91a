"""Sentences and pages: exact round trips on the real documents, and the splitting rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepwise.documents import paginate, read_lines, split_sentences
from stepwise.errors import StepwiseError

from .conftest import WMT_DOCS
from .test_cli import stepwise

DATA = WMT_DOCS
DOCUMENTS = sorted(DATA.glob("doc*.*")) if DATA.is_dir() else []


@pytest.mark.skipif(not DOCUMENTS, reason="the shared documents are not on this machine")
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
@pytest.mark.parametrize(("sentences", "chars"), [(1, None), (7, None), (10, 400), (None, 150)])
def test_paging_round_trips_every_shared_document(path, sentences, chars):
    lines = read_lines(path)
    doc = paginate(lines, path.suffix[1:], page_sentences=sentences, max_chars=chars)
    assert doc.joined_pages() == doc.text == path.read_text(encoding="utf-8").rstrip("\n")
    for page in doc.pages:
        if sentences:
            assert len(page.lines) <= sentences
        if chars and len(page.lines) > 1:
            assert page.chars <= chars
    assert [p.number for p in doc.pages] == list(range(len(doc.pages)))


@pytest.mark.skipif(not DOCUMENTS, reason="the shared documents are not on this machine")
def test_parallel_documents_split_into_similar_sentence_counts():
    for en in DATA.glob("doc*.en"):
        zh = en.with_suffix(".zh")
        count_en = len(paginate(read_lines(en), "en").pages[0].lines)
        count_zh = len(paginate(read_lines(zh), "zh").pages[0].lines)
        assert count_en == count_zh == 10  # the first page is full in both
        total_en = sum(len(p.lines) for p in paginate(read_lines(en), "en").pages)
        total_zh = sum(len(p.lines) for p in paginate(read_lines(zh), "zh").pages)
        assert abs(total_en - total_zh) <= 0.2 * total_en


@pytest.mark.parametrize(("text", "expected"), [
    ("Mr. Smith paid $3.14 today. He left.", ["Mr. Smith paid $3.14 today. ", "He left."]),
    ("The U.S. Army came. It was 3.5 km away.", ["The U.S. Army came. ", "It was 3.5 km away."]),
    ("J. R. R. Tolkien wrote. Then he slept.", ["J. R. R. Tolkien wrote. ", "Then he slept."]),
    ('"Why?" she asked. "Because!" He ran.', ['"Why?" she asked. ', '"Because!" ', "He ran."]),
    ("Wait... what? No... Fine.", ["Wait... what? ", "No... ", "Fine."]),
    ("e.g. this, i.e. that. Next one.", ["e.g. this, i.e. that. ", "Next one."]),
    ("no stop at the end", ["no stop at the end"]),
])
def test_latin_rules(text, expected):
    assert split_sentences(text, "en") == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("显然不是。这头怪物嘶吼一声。", ["显然不是。", "这头怪物嘶吼一声。"]),
    ("“我们怎么办？”尼西喊道。", ["“我们怎么办？”", "尼西喊道。"]),
    ("他说……然后走了！好吧", ["他说……", "然后走了！", "好吧"]),
    ("价格是3.5元；够了。", ["价格是3.5元；", "够了。"]),
    ("他读了 Harry Potter. Then he slept. 然后呢？", ["他读了 Harry Potter. ", "Then he slept. ",
                                                   "然后呢？"]),
])
def test_chinese_rules_and_mixed_scripts(text, expected):
    assert split_sentences(text, "zh") == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab .!?。？…”\"' \t3A")), max_size=40),
                min_size=1, max_size=6),
       st.sampled_from(["en", "zh"]), st.integers(1, 4))
def test_any_text_round_trips(lines, lang, size):
    for line in lines:
        assert "".join(split_sentences(line, lang)) == line
    if any(line.strip() for line in lines):
        doc = paginate(lines, lang, page_sentences=size)
        assert doc.joined_pages() == "\n".join(lines)


def test_bad_documents_are_clear_errors(tmp_path):
    with pytest.raises(StepwiseError, match="the document is empty"):
        paginate(["", "   "], "en")
    with pytest.raises(StepwiseError, match="unknown language code 'klingon'"):
        paginate(["Hi."], "klingon")
    with pytest.raises(StepwiseError, match="at least one sentence"):
        paginate(["Hi."], "en", page_sentences=0)
    giant = "word " * 5000
    doc = paginate([giant], "en", page_sentences=None, max_chars=100)
    assert len(doc.pages) == 1 and doc.joined_pages() == giant  # never split a sentence
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(StepwiseError, match="not UTF-8"):
        read_lines(tmp_path / "latin1.txt")


def test_language_codes_with_regions_are_accepted():
    assert paginate(["你好。再见。"], "zh-CN").pages[0].lines == ["你好。", "再见。"]
    assert paginate(["Hi. Bye."], "en_US").pages[0].lines == ["Hi.", "Bye."]


@pytest.mark.skipif(not DOCUMENTS, reason="the shared documents are not on this machine")
def test_pages_command_json_and_errors(tmp_path):
    done = stepwise("pages", str(DATA / "doc1.zh"), "--page-sentences", "5", "--json")
    assert done.returncode == 0, done.stderr
    pages = json.loads(done.stdout)
    assert all(len(p["sentences"]) <= 5 for p in pages) and pages[0]["page"] == 0
    joined = "".join(s for p in pages for s in p["sentences"])
    assert joined == "".join((DATA / "doc1.zh").read_text(encoding="utf-8").split())
    empty = tmp_path / "empty.en"
    empty.write_text("\n\n")
    done = stepwise("pages", str(empty))
    assert done.returncode == 2 and "the document is empty" in done.stderr
    (tmp_path / "x.txt").write_text("Hello.")
    done = stepwise("pages", str(tmp_path / "x.txt"))
    assert done.returncode == 2 and "unknown language code 'txt'" in done.stderr
