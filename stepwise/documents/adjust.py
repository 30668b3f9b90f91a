"""Letting a model move page breaks: a coarse split by count, then the model adjusts.

LongMT pages by sentence count first; a break can still fall between two sentences that
belong together (a question and its answer, a line of dialogue and its speaker). For each
break the model sees a few sentences on either side and says after which one the page
should end. An answer that does not parse, or would empty a page, keeps the break where
it was, so a model can only ever move sentences, never lose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from stepwise.documents.pages import Document, Page, Sentence

BREAK_HEAD = "Adjust a page break"
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class BreakDecision:
    page: int  # the break after this page (from 0)
    moved: int  # sentences moved: > 0 to the next page, < 0 from it
    answer: str


def break_prompt(before: list[str], after: list[str]) -> str:
    shown = [*before, *after]
    numbered = "\n".join(f"{i}. {' '.join(s.split())}" for i, s in enumerate(shown, 1))
    return (f"{BREAK_HEAD}: a long document is translated page by page, and a page should "
            "not separate sentences that belong together. The page now ends after sentence "
            f"{len(before)}. After which sentence should it end? Answer with one number "
            f"from 1 to {len(shown) - 1}.\n\n{numbered}")


def _spoken(sentences: list[Sentence]) -> list[Sentence]:
    return [s for s in sentences if s.text.strip()]


def adjust_breaks(document: Document, model: BaseChatModel,
                  window: int = 3) -> tuple[Document, list[BreakDecision]]:
    """The document with each page break where the model puts it (within ``window``)."""
    pages = [list(p.sentences) for p in document.pages]
    decisions = []
    for i in range(len(pages) - 1):
        before, after = _spoken(pages[i])[-window:], _spoken(pages[i + 1])[:window]
        if len(before) < 1 or len(after) < 1:
            continue
        answer = model.invoke([HumanMessage(break_prompt([s.text for s in before],
                                                         [s.text for s in after]))]).text
        found = _NUMBER.search(answer)
        chosen = int(found.group()) if found else len(before)
        moved = len(before) - chosen  # > 0: sentences move to the next page
        if not 1 <= chosen < len(before) + len(after) or \
                moved >= len(_spoken(pages[i])) or -moved >= len(_spoken(pages[i + 1])):
            moved = 0
        if moved > 0:
            cut = pages[i].index(before[-moved])
            pages[i], pages[i + 1] = pages[i][:cut], pages[i][cut:] + pages[i + 1]
        elif moved < 0:
            cut = pages[i + 1].index(after[-moved - 1]) + 1
            pages[i], pages[i + 1] = pages[i] + pages[i + 1][:cut], pages[i + 1][cut:]
        decisions.append(BreakDecision(i, moved, answer.strip()[:200]))
    adjusted = document.model_copy(update={
        "pages": [Page(number=n, sentences=s) for n, s in enumerate(pages)]})
    return adjusted, decisions
