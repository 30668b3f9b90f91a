"""A request cache in front of any chat model: identical greedy requests are asked once.

Search re-asks the same questions all the time: two rollouts that chose the same modules
for a page send the same translation request. At temperature 0 (or for a model with no
sampling, such as a simulated one) the answer is the same, so the second call is answered
from the cache. Requests are keyed as cassettes key them (``canonical_request``). A
greedy request that arrives while the same one is in flight waits for that call's answer
instead of sending its own (single flight: parallel simulations often ask the same thing
at once); when that call fails, its waiters get the same error. The counters say what was
asked, what was saved and the tokens spent; ``max_concurrent`` bounds the calls in flight
to the backend, however many searches run at once.

Rank decisions are cached the same way (``score_completions``, when the wrapped model can
score): a page's decision prompt and its eight candidate steps do not depend on what was
decided before it, so every rollout that reaches the page asks the same question, and a
policy model deciding in rollouts costs one scoring per page instead of one per visit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, PrivateAttr

from stepwise.errors import StepwiseError
from stepwise.llm.base import ToolCallingMixin
from stepwise.llm.messages import canonical_request, request_key, token_usage
from stepwise.seeds import derive_seed

# (base seed, calls made so far) for the sampled calls of the current search step
_SAMPLING_SEED: ContextVar[list[int] | None] = ContextVar("stepwise_sampling_seed", default=None)


@contextlib.contextmanager
def sampling_seed(base: int) -> Iterator[None]:
    """Seed every sampled call made inside: the n-th gets a seed derived from (base, n)."""
    token = _SAMPLING_SEED.set([base, 0])
    try:
        yield
    finally:
        _SAMPLING_SEED.reset(token)


def _next_seed() -> int | None:
    state = _SAMPLING_SEED.get()
    if state is None:
        return None
    state[1] += 1
    return derive_seed(state[0], state[1], bits=32)  # 32 bits: what servers accept


class CachingChatModel(ToolCallingMixin, BaseChatModel):
    """Answers a repeated greedy request from memory; passes everything else through."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: BaseChatModel
    max_entries: int = 200_000
    max_concurrent: int | None = None  # calls in flight to the backend at most

    _gate: threading.BoundedSemaphore | None = PrivateAttr(default=None)

    _cache: dict[str, ChatResult] = PrivateAttr(default_factory=dict)
    _in_flight: dict[str, Future] = PrivateAttr(default_factory=dict)  # key -> its answer
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _counts: dict[str, int] = PrivateAttr(
        default_factory=lambda: {"calls": 0, "saved": 0, "tokens_in": 0, "tokens_out": 0})
    _scores: dict[str, list[float]] = PrivateAttr(default_factory=dict)
    _scoring: dict[str, Future] = PrivateAttr(default_factory=dict)  # key -> its scores
    _score_counts: dict[str, int] = PrivateAttr(
        default_factory=lambda: {"scored": 0, "saved": 0})

    @property
    def _llm_type(self) -> str:
        return f"cached-{self.model._llm_type}"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.model._get_ls_params(stop=stop, **kwargs)

    def model_post_init(self, context: Any) -> None:
        if self.max_concurrent:
            self._gate = threading.BoundedSemaphore(self.max_concurrent)

    @property
    def counts(self) -> dict[str, int]:
        """Calls made to the model, calls saved by the cache, tokens in and out."""
        with self._lock:
            return dict(self._counts)

    @property
    def score_counts(self) -> dict[str, int]:
        """Rank decisions scored by the model, and those answered from the cache."""
        with self._lock:
            return dict(self._score_counts)

    @property
    def score_completions(self):
        """The wrapped model's ``score_completions``, cached by request. A property that
        raises AttributeError when the wrapped model cannot score, so that ``ranker`` looks
        past this cache and names the model that cannot."""
        from stepwise.llm.ranking import ranker

        try:
            score = ranker(self.model)
        except StepwiseError as exc:
            raise AttributeError("score_completions") from exc

        def cached(prompt: Sequence[Any], completions: Sequence[Sequence[Any]],
                   tools: Sequence[Any] | None = None) -> list[float]:
            def scored() -> list[float]:
                scores = list(score(prompt, completions, tools))
                with self._lock:
                    self._score_counts["scored"] += 1
                return scores

            key = request_key({"score": [prompt, completions, tools]})
            return self._once(key, self._scores, self._scoring, self._score_counts, scored,
                              list)

        return cached

    def _greedy(self, kwargs: dict[str, Any]) -> bool:
        temperature = kwargs.get("temperature", getattr(self.model, "temperature", None))
        return not temperature and kwargs.get("n", 1) in (None, 1)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        greedy = self._greedy(kwargs)
        if not greedy and "seed" not in kwargs and (seed := _next_seed()) is not None:
            kwargs["seed"] = seed  # a sampled call inside a search step: reproducible
        key = request_key(canonical_request(messages, {**kwargs, "stop": stop})) \
            if greedy else None
        if key is None:
            return self._counted_call(messages, stop, kwargs)
        return self._once(key, self._cache, self._in_flight, self._counts,
                          lambda: self._counted_call(messages, stop, kwargs),
                          lambda result: result.model_copy(deep=True))  # callers set ids

    def _counted_call(self, messages: list[BaseMessage], stop: list[str] | None,
                      kwargs: dict[str, Any]) -> ChatResult:
        result = self._call(messages, stop, kwargs)
        tokens_in, tokens_out = token_usage(result.generations[0].message)
        with self._lock:
            self._counts["calls"] += 1
            self._counts["tokens_in"] += tokens_in
            self._counts["tokens_out"] += tokens_out
        return result

    def _once(self, key: str, store: dict[str, Any], flights: dict[str, Future],
              counts: dict[str, int], compute: Callable[[], Any], copy: Callable[[Any], Any]
              ) -> Any:
        """``compute()``'s answer for ``key``, asked once: from ``store`` when kept, from
        the same request in flight when there is one (its error too), else computed and
        kept. Every answer is a ``copy``, so no caller changes what is kept."""
        with self._lock:
            hit = store.get(key)
            if hit is not None:
                counts["saved"] += 1
                return copy(hit)
            leader = flights.get(key)
            if leader is None:
                answer = flights[key] = Future()
            else:
                counts["saved"] += 1  # saved once it joins: no call of its own
        if leader is not None:  # the same request is in flight: its answer is ours
            return copy(leader.result())
        try:
            result = compute()
            kept = copy(result)
            with self._lock:
                if len(store) < self.max_entries:
                    store[key] = kept
        except BaseException as exc:
            answer.set_exception(exc)
            raise
        else:
            answer.set_result(kept)
        finally:  # after keeping: a newcomer finds the one or the other
            with self._lock:
                flights.pop(key, None)
        return result

    def _call(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any]) -> ChatResult:
        if self._gate is None:
            return self.model._generate(messages, stop=stop, **kwargs)
        with self._gate:
            return self.model._generate(messages, stop=stop, **kwargs)
