"""``LongMTAgent``: translate a document page by page with summary, page and entity memory.

>>> agent = LongMTAgent(from_uri("sim:translator"), policy="only:entities")
>>> result = agent.translate(lines, src="qsy", tgt="en")
>>> result.lines        # one translation per source line
>>> result.steps        # the step trace: modules, context tokens, attempts, timings
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from stepwise.agents.longmt.graph import build_graph
from stepwise.agents.longmt.page_steps import DECIDE_MODES, PageSteps
from stepwise.agents.longmt.policies import Oracle, Policy, module_set
from stepwise.agents.longmt.state import PageStep
from stepwise.documents.adjust import BreakDecision, adjust_breaks
from stepwise.documents.pages import Document, paginate
from stepwise.errors import StepwiseError
from stepwise.memory.translation import TranslationMemory
from stepwise.scoring.languages import line_joiner


def assemble_lines(document: Document, translations: Sequence[Sequence[str]],
                   tgt: str) -> list[str]:
    """Sentence translations back into the document's lines (blank lines stay blank).
    ``translations`` may cover only the first pages: a line they do not finish is partial."""
    parts: list[list[str]] = [[] for _ in document.lines]
    if len(translations) > len(document.pages):
        raise ValueError(f"{len(translations)} pages of translations for a document of "
                         f"{len(document.pages)} pages")
    for page, translated in zip(document.pages, translations, strict=False):
        sentences = [s for s in page.sentences if s.text.strip()]
        for sentence, text in zip(sentences, translated, strict=True):
            parts[sentence.line].append(text)
    joiner = line_joiner(tgt)
    return [joiner.join(p) for p in parts]


def decision_counts(steps: Sequence[PageStep]) -> dict[str, int]:
    """How the model's decisions were made: by tool call, by the no-modules reply, or not
    at all (fallback); and its tool calls over turns with tools bound.

    A model that never calls a tool while tools are bound is likely not shown the tool
    schemas (its chat template or server drops them); these counts make that visible.
    """
    decided = [s for s in steps if "model_turns" in s]
    if not decided:
        return {}
    return {
        "decisions_by_tool_call": sum(s.get("decided_by") == "model" and
                                      s.get("model_tool_calls", 0) > 0 for s in decided),
        "decisions_by_text": sum(s.get("decided_by") == "model" and
                                 not s.get("model_tool_calls", 0) for s in decided),
        "turns_with_tools": sum(s.get("model_turns", 0) for s in decided),
        "tool_calls": sum(s.get("model_tool_calls", 0) for s in decided),
    }


@dataclass
class TranslationResult:
    doc_id: str
    src: str
    tgt: str
    policy: str
    document: Document
    lines: list[str]
    steps: list[PageStep]
    memory: TranslationMemory
    page_breaks: list[BreakDecision] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """Sums over pages: what the policy cost."""
        keys = ("context_tokens", "attempts", "splits", "unaligned", "decision_errors",
                "tokens_in", "tokens_out")
        totals: dict[str, Any] = {k: sum(s.get(k, 0) for s in self.steps) for k in keys}
        totals["pages"] = len(self.steps)
        totals["module_calls"] = sum(len(s.get("modules", [])) for s in self.steps)
        totals["fallbacks"] = sum(s.get("decided_by") == "fallback" for s in self.steps)
        ranked = [s for s in self.steps if s.get("decided_by") in ("rank", "reward")]
        if ranked:  # pages whose module set was ranked, and those whose scores all tied
            totals["rank_decisions"] = len(ranked)
            totals["rank_ties"] = sum(bool(s.get("rank_tie")) for s in ranked)
        totals.update(decision_counts(self.steps))
        totals["seconds"] = round(sum(sum(s.get("seconds", {}).values()) for s in self.steps), 4)
        return totals


class LongMTAgent:
    """The translator model, the module policy and (optionally) a separate policy model."""

    def __init__(self, model: BaseChatModel, *, policy: str | Policy = "none",
                 policy_model: BaseChatModel | None = None, page_sentences: int | None = 10,
                 max_chars: int | None = None, view_k: int = 5, max_query_rounds: int = 2,
                 retries: int = 1, oracle: Oracle | None = None,
                 adjust_pages: bool = False, fallback: str = "none",
                 decision_max_tokens: int | None = None,
                 translation_max_tokens: int | None = None,
                 decide: str = "generate") -> None:
        self.model = model
        self.policy = policy if isinstance(policy, Policy) else Policy.parse(policy)
        self.policy_model = policy_model
        self.page_sentences = page_sentences
        self.max_chars = max_chars
        self.view_k = view_k
        self.max_query_rounds = max_query_rounds
        self.retries = retries
        self.fallback = module_set(fallback)  # what a page gets when the model's decision is unusable
        self.oracle = oracle
        self.adjust_pages = adjust_pages  # the policy model moves page breaks after paging
        self.decision_max_tokens = decision_max_tokens  # per call; None: the model's own
        self.translation_max_tokens = translation_max_tokens  # caps the page-sized limit
        if decide not in DECIDE_MODES:
            raise StepwiseError(f"decide must be one of {', '.join(DECIDE_MODES)}, not {decide!r}")
        self.decide = decide  # how the deciding model decides: generate, or rank the sets

    def paginate(self, lines: Sequence[str], src: str) -> Document:
        return paginate(lines, src, page_sentences=self.page_sentences, max_chars=self.max_chars)

    def steps_for(self, document: Document, src: str, tgt: str) -> PageSteps:
        return PageSteps(model=self.model, document=document, src=src, tgt=tgt,
                         policy=self.policy, policy_model=self.policy_model, oracle=self.oracle,
                         view_k=self.view_k, max_query_rounds=self.max_query_rounds,
                         retries=self.retries, fallback=self.fallback,
                         decision_max_tokens=self.decision_max_tokens,
                         translation_max_tokens=self.translation_max_tokens,
                         decide=self.decide)

    def translate(self, source: Sequence[str] | str | Document, *, src: str, tgt: str,
                  doc_id: str = "doc",
                  on_page: Callable[[PageStep], None] | None = None) -> TranslationResult:
        """Translate a document (lines, text or paged ``Document``); ``on_page`` sees each page."""
        if isinstance(source, str):
            source = source.split("\n")
        document = source if isinstance(source, Document) else self.paginate(source, src)
        page_breaks: list[BreakDecision] = []
        if self.adjust_pages:
            document, page_breaks = adjust_breaks(document, self.policy_model or self.model)
        steps = self.steps_for(document, src, tgt)
        if self.policy.needs_world and self.oracle is None:  # fail before any model call
            self.policy.modules_for(0, document.pages[0].lines, None)
        graph = build_graph(steps)
        state: dict[str, Any] = {"page": 0, "memory": TranslationMemory.empty(), "steps": []}
        config = {"recursion_limit": 4 * len(document.pages) + 10}
        for update in graph.stream(state, config, stream_mode="updates"):
            for node, change in update.items():
                if node == "update":
                    if on_page is not None:
                        on_page(change["steps"][-1])
                    state["memory"] = change["memory"]
                    state["steps"] = state["steps"] + change["steps"]
        translations = [s["translation"] for s in state["steps"]]
        return TranslationResult(doc_id=doc_id, src=src, tgt=tgt, policy=self.policy.text,
                                 document=document,
                                 lines=assemble_lines(document, translations, tgt),
                                 steps=state["steps"], memory=state["memory"],
                                 page_breaks=page_breaks)
