"""A document in pages: whole sentences, by a sentence count and/or a character budget.

A page never splits a sentence, and the pages joined give the document back exactly
(``Document.text``): each sentence knows its line, and lines are joined with newlines.
A sentence longer than the character budget becomes a page of its own; a line of only
spaces rides along in its page without counting as a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from stepwise.documents.sentences import language_family, split_sentences
from stepwise.errors import StepwiseError
from stepwise.jsonl import read_text


class Sentence(BaseModel):
    """One sentence: its text (trailing whitespace included) and the line it came from."""

    model_config = ConfigDict(frozen=True)

    text: str
    line: int


class Page(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int  # from 0
    sentences: list[Sentence]

    @property
    def lines(self) -> list[str]:
        """The sentences, stripped, blank ones left out: what a translator sees."""
        return [s.text.strip() for s in self.sentences if s.text.strip()]

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.sentences)


class Document(BaseModel):
    """A document's lines, language and pages."""

    lines: list[str]
    lang: str
    pages: list[Page] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def joined_pages(self) -> str:
        """The pages put back together; equal to ``text`` by construction (and by test)."""
        rebuilt: list[str] = [""] * len(self.lines)
        for page in self.pages:
            for sentence in page.sentences:
                rebuilt[sentence.line] += sentence.text
        return "\n".join(rebuilt)


def sentences_of(lines: Sequence[str], lang: str) -> list[Sentence]:
    language_family(lang)  # an unknown code fails here, once
    return [Sentence(text=text, line=i) for i, line in enumerate(lines)
            for text in split_sentences(line, lang)]


def paginate(lines: Sequence[str], lang: str, *, page_sentences: int | None = 10,
             max_chars: int | None = None) -> Document:
    """Split ``lines`` into pages of at most ``page_sentences`` sentences and ``max_chars``."""
    if page_sentences is not None and page_sentences < 1:
        raise StepwiseError("a page needs at least one sentence (--page-sentences >= 1)")
    if max_chars is not None and max_chars < 1:
        raise StepwiseError("--max-chars must be at least 1")
    if page_sentences is None and max_chars is None:
        raise StepwiseError("give a sentence count or a character budget for pages")
    sentences = sentences_of(lines, lang)
    if not any(s.text.strip() for s in sentences):
        raise StepwiseError("the document is empty: no sentences to page")
    pages: list[list[Sentence]] = [[]]
    count = chars = 0
    for sentence in sentences:
        if not sentence.text.strip():  # a line of spaces rides along uncounted
            pages[-1].append(sentence)
            continue
        full = (page_sentences is not None and count >= page_sentences) or (
            max_chars is not None and count and chars + len(sentence.text) > max_chars)
        if full:
            pages.append([])
            count = chars = 0
        pages[-1].append(sentence)
        count += 1
        chars += len(sentence.text)
    return Document(lines=list(lines), lang=lang,
                    pages=[Page(number=i, sentences=p) for i, p in enumerate(pages)])


def read_lines(path: str | Path) -> list[str]:
    """A UTF-8 text document, one sentence or paragraph per line; clear errors otherwise."""
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline
    return lines
