"""A request cache in front of any chat model: identical greedy requests are asked once.

Search re-asks the same questions all the time: two rollouts that chose the same modules
for a page send the same translation request. At temperature 0 (or for a model with no
sampling, such as a simulated one) the answer is the same, so the second call is answered
from the cache. Requests are keyed as cassettes key them (``canonical_request``). The
counters say what was asked, what was saved and the tokens spent; ``max_concurrent``
bounds the calls in flight to the backend, however many searches run at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, PrivateAttr

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
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _counts: dict[str, int] = PrivateAttr(
        default_factory=lambda: {"calls": 0, "saved": 0, "tokens_in": 0, "tokens_out": 0})

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
        if key is not None:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._counts["saved"] += 1
                    return hit.model_copy(deep=True)  # callers may set ids on messages
        if self._gate is None:
            result = self.model._generate(messages, stop=stop, **kwargs)
        else:
            with self._gate:
                result = self.model._generate(messages, stop=stop, **kwargs)
        tokens_in, tokens_out = token_usage(result.generations[0].message)
        with self._lock:
            self._counts["calls"] += 1
            self._counts["tokens_in"] += tokens_in
            self._counts["tokens_out"] += tokens_out
            if key is not None and len(self._cache) < self.max_entries:
                self._cache[key] = result.model_copy(deep=True)
        return result
