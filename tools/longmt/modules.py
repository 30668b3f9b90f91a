"""The LongMT memory modules as tools: view_summaries, view_pages, lookup_entities.

The tools are built for one page of one document (``memory_tools``): they read the memory
of the pages finished so far and nothing else, so a page number that is not earlier than
the current page is a wrong argument, answered with an error the model reads (tool
results, never exceptions, reach the model: see ``stepwise.tools.executor``). Page numbers
are counted from 1, as in the prompts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from stepwise.memory.translation import EntityRecord, TranslationMemory
from stepwise.tools.longmt.formats import (
    LOOKUP_ENTITIES,
    VIEW_PAGES,
    VIEW_SUMMARIES,
    entities_text,
    sentences_text,
    summaries_text,
)
from stepwise.tools.longmt.retrieval import relevant_sentences

MAX_SENTENCES = 20
MIN_PREFIX = 3
_CAPITALISED = re.compile(r"[~]?([A-ZÀ-ÞА-Я][^\W\d_]{2,})")


class ViewSummariesArgs(BaseModel):
    pages: list[int] | None = Field(
        default=None, description="Earlier pages (from 1); default: all.")


class ViewPagesArgs(BaseModel):
    query: str = Field(description="Words, names or a sentence of this page.")
    pages: list[int] | None = Field(
        default=None, description="Earlier pages to search (from 1); default: all.")
    k: int = Field(default=5, ge=1, le=MAX_SENTENCES, description="How many sentences.")


class LookupEntitiesArgs(BaseModel):
    names: list[str] | None = Field(
        default=None, description="Names as written in the source (a prefix matches); "
        "default: the names on this page.")


@dataclass(frozen=True)
class PageView:
    """What the tools of one page may see: memory of the pages before ``page`` (from 0)."""

    memory: TranslationMemory
    page: int
    page_text: str
    default_k: int = 5

    def earlier(self, pages: list[int] | None) -> list[int]:
        """Page numbers from 1 checked against the pages finished so far, as indexes from 0."""
        if pages is None:
            return list(range(self.page))
        if not self.page:
            raise ToolException("this is the first page: there are no earlier pages yet")
        wrong = [p for p in pages if not 1 <= p <= self.page]
        if wrong:
            raise ToolException(
                f"page {wrong[0]} is not an earlier page: this is page {self.page + 1}, so "
                f"the earlier pages are 1 to {self.page}")
        return sorted({p - 1 for p in pages})

    def view_summaries(self, pages: list[int] | None = None) -> str:
        return summaries_text(self.memory.summary_lines(self.earlier(pages)))

    def view_pages(self, query: str, pages: list[int] | None = None, k: int = 5) -> str:
        if not query.strip():
            raise ToolException("the query is empty: say what to look for")
        pairs = self.memory.sentence_pairs(self.earlier(pages))
        return sentences_text(relevant_sentences(pairs, query, k))

    def lookup_entities(self, names: list[str] | None = None) -> str:
        if names is None:
            found = self.memory.entities_in(self.page_text)
            names = _CAPITALISED.findall(self.page_text)
        else:
            names = [name.strip() for name in names if name.strip()]
            found = self.memory.find_entities(names)
        return entities_text(_with_prefix_matches(found, names, self.memory))


def _with_prefix_matches(found: list[EntityRecord], names: list[str],
                         memory: TranslationMemory) -> list[EntityRecord]:
    """Add records whose name starts with a given name (abbreviations, short forms)."""
    seen = {record.name for record in found}
    result = list(found)
    for name in names:
        stem = name.lstrip("~")
        if len(stem) < MIN_PREFIX:
            continue
        for record in memory.entities.values():
            if record.name not in seen and record.name != stem and record.name.startswith(stem):
                seen.add(record.name)
                result.append(record)
    return result


def memory_tools(view: PageView) -> dict[str, BaseTool]:
    """The three query tools for one page, by name."""
    return {
        VIEW_SUMMARIES: StructuredTool.from_function(
            view.view_summaries, name=VIEW_SUMMARIES, args_schema=ViewSummariesArgs,
            description="Summaries of earlier pages: who and what came before."),
        VIEW_PAGES: StructuredTool.from_function(
            view.view_pages, name=VIEW_PAGES, args_schema=ViewPagesArgs,
            description="Earlier sentences matching a query, with their translations."),
        LOOKUP_ENTITIES: StructuredTool.from_function(
            view.lookup_entities, name=LOOKUP_ENTITIES, args_schema=LookupEntitiesArgs,
            description="How names and terms were translated on earlier pages."),
    }


def default_arguments(tool: str, view: PageView) -> dict:
    """The arguments a non-deciding policy (all, only, fixed, oracle) calls a module with."""
    if tool == VIEW_PAGES:
        return {"query": view.page_text, "k": view.default_k}
    return {}
