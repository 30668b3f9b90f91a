"""LongMT as an explorable environment: the action at a page is the set of memory modules.

It satisfies ``stepwise.search.environment.Environment`` structurally (agents import no
search code). A state is plain data whose memory is immutable, so the explorer keeps one
per tree node for free and rollouts from a node share its prefix. The exported decision
step is the agent's own tool-call turn for that page (``PageSteps.rule_turn``).

Scores are BLEU over the document's lines against the reference, combined from cached
per-page statistics. A step's own reward is its page's BLEU over every sentence it
translated (``PageRewards``: sentence-level where the world knows sentence references,
else whole lines shared by the pages they span), so a module choice is judged by the page
it served, not by the random pages after it, and no part of its effect is unscored.

With a simulated world (``oracle``), ``best_actions`` are the exact best module sets at a
state (all eight tried, ties kept) and ``optimal_action`` is the cheapest of them.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from langchain_core.language_models import BaseChatModel

from stepwise.agents.longmt.agent import assemble_lines
from stepwise.agents.longmt.optima import SETS, cheapest
from stepwise.agents.longmt.page_rewards import PageRewards
from stepwise.agents.longmt.page_steps import PageSteps
from stepwise.agents.longmt.policies import Oracle, Policy
from stepwise.documents.pages import Document
from stepwise.errors import StepwiseError
from stepwise.llm.messages import tool_schemas, training_dicts
from stepwise.memory.translation import TranslationMemory
from stepwise.scoring import IncrementalScorer, bleu_from_stats
from stepwise.scoring.incremental import SegmentStats
from stepwise.tools.longmt.modules import memory_tools

SHORT = {"view_summaries": "S", "view_pages": "P", "lookup_entities": "E"}
ALL_SETS: list[list[str]] = [list(s) for s in SETS]
BEST_CACHE = 64  # states whose best sets are kept (the explorer asks twice per expansion)


class LongMTEnvironment:
    """One document: translate it page by page, a module set per page."""

    # A page's reward covers the sentences it translated, and the score of an unfinished
    # document is that of the lines finished so far: rollouts may stop at a horizon.
    scores_partial_episodes = True

    def __init__(self, task_id: str, document: Document, ref: Sequence[str], model: BaseChatModel,
                 *, src: str, tgt: str, oracle: Oracle | None = None,
                 rollout_policy: str = "random", policy_model: BaseChatModel | None = None,
                 view_k: int = 5, decision_max_tokens: int | None = None,
                 translation_max_tokens: int | None = None) -> None:
        if len(ref) != len(document.lines):
            raise StepwiseError(f"{task_id}: the reference has {len(ref)} lines for "
                                f"{len(document.lines)} source lines; exploring needs them aligned")
        self.task_id = task_id
        self.document = document
        self.ref = list(ref)
        self.tgt = tgt
        self.oracle = oracle
        self.rollout_policy = rollout_policy
        self.steps = PageSteps(model=model, document=document, src=src, tgt=tgt,
                               policy=Policy.parse("auto"), policy_model=policy_model,
                               oracle=oracle, view_k=view_k,
                               decision_max_tokens=decision_max_tokens,
                               translation_max_tokens=translation_max_tokens)
        self.scorer = IncrementalScorer(tgt)
        self.rewards = (oracle.rewards(document, self.scorer) if oracle is not None else
                        PageRewards(document, self.ref, tgt, scorer=self.scorer))
        self._finished_on = self._lines_finished_on()
        self._best: OrderedDict[int, tuple[Any, int, frozenset]] = OrderedDict()

    # -- the protocol -----------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return {"page": 0, "memory": TranslationMemory.empty(), "steps": ()}

    def actions(self, state: dict[str, Any]) -> list[list[str]]:
        return [[]] if state["page"] == 0 else [list(s) for s in ALL_SETS]

    def step(self, state: dict[str, Any], action: Sequence[str] | None) -> dict[str, Any]:
        """Query with ``action`` (None: the policy model decides, as ``auto``), translate, update."""
        current = {**state, **self.steps.query(state, None if action is None else list(action))}
        current.update(self.steps.translate(current))
        done = self.steps.update(current)
        return {"page": done["page"], "memory": done["memory"],
                "steps": (*state["steps"], *done["steps"])}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return state["page"] >= len(self.document.pages)

    def lines(self, state: dict[str, Any]) -> list[str]:
        return assemble_lines(self.document, [s["translation"] for s in state["steps"]], self.tgt)

    def score(self, state: dict[str, Any]) -> float:
        """Document BLEU over lines (corpus BLEU, as ``stepwise translate`` reports it); for
        a document not finished, over the lines its translated pages finish."""
        return bleu_from_stats(sum(self._line_stats(state), SegmentStats.empty()))

    def step_scores(self, state: dict[str, Any]) -> list[float]:
        """Each page's own BLEU over every sentence it translated: a reward for its step."""
        translations = [s["translation"] for s in state["steps"]]
        return [bleu_from_stats(stats) for stats in self.rewards.stats(translations)]

    def step_tokens(self, state: dict[str, Any]) -> list[int]:
        """The model tokens, in and out, each page's step used (its decision, translation
        and memory updates): what a tree node shows as its step's cost."""
        return [s["tokens_in"] + s["tokens_out"] for s in state["steps"]]

    def baseline_score(self) -> float:
        return self.baseline_scores[0]

    def baseline_step_scores(self) -> list[float]:
        return self.baseline_scores[1:]

    @cached_property
    def baseline_scores(self) -> list[float]:
        """The ``none`` policy's document score, then its score per page."""
        state = self.initial_state()
        while not self.is_terminal(state):
            state = self.step(state, [])
        return [self.score(state), *self.step_scores(state)]

    def rollout_action(self, state: dict[str, Any], rng: random.Random) -> list[str] | None:
        if self.rollout_policy == "auto":
            return None
        actions = self.actions(state)
        return actions[rng.randrange(len(actions))]

    def decision_prompt(self, state: dict[str, Any]) -> list[dict]:
        return training_dicts(self.steps.decision_messages(state["page"]))

    def decision_completion(self, state: dict[str, Any], action: Sequence[str]) -> list[dict]:
        view = self.steps.view(state)
        return training_dicts([self.steps.rule_turn(state["page"], list(action), view)])

    def tool_schemas(self) -> list[dict]:
        view = self.steps.view(self.initial_state())
        return tool_schemas(list(memory_tools(view).values()))

    def best_actions(self, state: dict[str, Any]) -> list[list[str]] | None:
        """The exact best module sets at ``state`` (ties kept, in ``SETS`` order), or None
        without a simulated world."""
        if self.oracle is None:
            return None
        memory = state["memory"]
        cached = self._best.get(id(memory))
        if cached is None or cached[0] is not memory or cached[1] != state["page"]:
            cached = (memory, state["page"], self.oracle.best_sets(self.steps, state))
            self._best[id(memory)] = cached
            while len(self._best) > BEST_CACHE:
                self._best.popitem(last=False)
        return [list(s) for s in SETS if s in cached[2]]

    def optimal_action(self, state: dict[str, Any]) -> list[str] | None:
        """The cheapest of the exact best sets (fewest modules, then the tools' order)."""
        best = self.best_actions(state)
        return None if best is None else list(cheapest(best))

    def action_label(self, action: Sequence[str] | None) -> str:
        if action is None:
            return "auto"
        return "+".join(SHORT[m] for m in action) or "none"

    # -- the document score -----------------------------------------------------------

    def _lines_finished_on(self) -> list[list[int]]:
        """Per page, the document lines whose last sentence it translates."""
        last_page = {}
        for page in self.document.pages:
            for sentence in page.sentences:
                last_page[sentence.line] = page.number
        finished: list[list[int]] = [[] for _ in self.document.pages]
        for line in range(len(self.document.lines)):  # empty lines go with the last page
            finished[last_page.get(line, len(finished) - 1)].append(line)
        return finished

    def _line_stats(self, state: dict[str, Any]) -> list[SegmentStats]:
        """The lines finished so far, in parts by the page that finishes them (``score``)."""
        lines = self.lines(state)
        return [self.scorer.page_stats([lines[i] for i in finished], [self.ref[i] for i in finished])
                for finished in self._finished_on[:len(state["steps"])]]
