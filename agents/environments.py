"""Explorable environments by name, built from a plain, picklable spec.

The command line and a distributed run (each worker builds its own environments and
model) both start from an ``EnvSpec``; search code receives only the factory it returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from stepwise.errors import StepwiseError

EnvName = Literal["longmt", "think"]
ENVIRONMENTS: tuple[str, ...] = get_args(EnvName)
LongMTRollout = Literal["random", "auto"]  # random modules, or a model decides (auto)
Decide = Literal["generate", "rank", "reward"]  # the page steps' DECIDE_MODES, spelled without their import
BATCHED_SCHEMES = ("hf", "tiny")  # local models, whose calls can share one generate
MAX_BATCH = 16  # requests in one batched generate at most


class EnvSpec(BaseModel):
    """Everything needed to rebuild a run's environments in any process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: EnvName
    dataset: str  # longmt: a dataset, folder or file; think: a policy world
    model: str  # a model URI
    model_name: str | None = None
    page_sentences: int = 10
    think_tools: tuple[str, ...] = ("think",)
    act_samples: int = 1  # think: act turns sampled as siblings (one n > 1 request)
    src: str | None = None
    tgt: str | None = None
    max_concurrent: int | None = None
    rollout: LongMTRollout = "random"  # longmt rollouts
    policy_model: str | None = None  # longmt: the model that decides under auto rollouts
    # longmt, decide="reward": the model the policy model was trained from (its reference)
    reference_model: str | None = None
    # Constructor kwargs (JSON, so the spec stays hashable) that bound each model's calls:
    # max_tokens, timeout, sampling; and longmt's per-call limits (None: the model's own).
    model_kwargs: str = "{}"
    policy_model_kwargs: str = "{}"
    decision_max_tokens: int | None = None
    translation_max_tokens: int | None = None
    decide: Decide = "generate"  # longmt auto rollouts: generate, rank, or rank by reward
    # Model calls of one process that may go to a local model (hf:, tiny) as one batched
    # generate (parallel simulations, workers); None or 1: one generate per call. It changes
    # no greedy answer, so run settings leave it out.
    batch: int | None = Field(default=None, ge=1)

    def documents(self) -> dict[str, Any]:
        from stepwise.documents.sources import load_documents
        from stepwise.sim.translation.translator import check_translatable

        docs = {d.id: d for d in load_documents(Path(self.dataset), src=self.src, tgt=self.tgt)}
        check_translatable(self.model, docs.values())
        missing = [d for d in docs.values() if d.ref is None]
        if missing:
            raise StepwiseError(f"{missing[0].id}: exploring needs a reference to score against")
        return docs

    def task_ids(self) -> list[str]:
        if self.env == "longmt":
            return list(self.documents())
        from stepwise.agents.think.worlds import WORLDS, task_ids

        if self.dataset not in WORLDS:
            raise StepwiseError(f"--env think explores a policy world's tasks: give a world "
                                f"({', '.join(WORLDS)}), not {self.dataset}")
        return list(task_ids(self.dataset))

    def factory(self) -> tuple[Callable[[str], Any], Any]:
        """``make_env(task_id)`` and the cached model the environments share."""
        from stepwise.llm import from_uri
        from stepwise.llm.cache import CachingChatModel

        kwargs = {"model_name": self.model_name} if self.model_name else {}
        model = CachingChatModel(model=self._batched(self.model, from_uri(
            self.model, **kwargs, **json.loads(self.model_kwargs))),
                                 max_concurrent=self.max_concurrent)
        if self.env == "longmt":
            decider = (self._decider(self.policy_model, kwargs) if self.policy_model
                       else None)
            if self.decide == "reward" and decider is not None:
                from stepwise.llm.implicit_reward import ImplicitReward

                if not self.reference_model:
                    raise StepwiseError("decide=reward needs the model the policy model was "
                                        "trained from (reference_model)")
                decider = ImplicitReward(decider, self._decider(self.reference_model, kwargs))
            return self._longmt(model, decider), model
        return self._think(model), model

    def _decider(self, uri: str, kwargs: dict[str, Any]) -> Any:
        from stepwise.llm import from_uri
        from stepwise.llm.cache import CachingChatModel

        return CachingChatModel(model=self._batched(uri, from_uri(
            uri, **kwargs, **json.loads(self.policy_model_kwargs))))

    def _batched(self, uri: str, model: Any) -> Any:
        """A local model behind a ``BatchingChatModel`` when ``batch`` asks for it; the
        cache stays in front of it, so a cache hit never waits for a batch."""
        if not self.batch or self.batch < 2 or uri.partition(":")[0] not in BATCHED_SCHEMES:
            return model
        from stepwise.llm.batching import BatchingChatModel

        return BatchingChatModel(model=model, max_batch=min(self.batch, MAX_BATCH))

    def _longmt(self, model: Any, decider: Any) -> Callable[[str], Any]:
        from stepwise.agents.longmt.environment import LongMTEnvironment
        from stepwise.documents.pages import paginate

        docs = self.documents()
        simulated = all(d.world == "translation" for d in docs.values())

        def make_env(task_id: str) -> LongMTEnvironment:
            doc = docs[task_id]
            document = paginate(doc.src, doc.src_lang, page_sentences=self.page_sentences)
            oracle = None
            if simulated:  # the world's exact best module sets per page
                from stepwise.sim.translation.oracle import WorldOracle

                oracle = WorldOracle(doc.ref, doc.tgt_lang)
            env = LongMTEnvironment(task_id, document, doc.ref, model, src=doc.src_lang,
                                    tgt=doc.tgt_lang, oracle=oracle,
                                    rollout_policy=self.rollout, policy_model=decider,
                                    decision_max_tokens=self.decision_max_tokens,
                                    translation_max_tokens=self.translation_max_tokens)
            env.steps.decide = self.decide  # how a rollout's auto decision is made
            return env

        return make_env

    def _think(self, model: Any) -> Callable[[str], Any]:
        from stepwise.agents.think.environment import ThinkEnvironment

        tools = list(self.think_tools)
        def make_env(task_id: str) -> ThinkEnvironment:
            return ThinkEnvironment(task_id, model, world=self.dataset, think_tools=tools,
                                    act_samples=self.act_samples)

        make_env(self.task_ids()[0])  # unknown think tools fail here, before any search
        return make_env
