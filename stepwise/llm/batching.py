"""One padded ``generate`` for the requests that several threads send a local model at once.

Parallel simulations, the siblings of one expansion and several tasks in one process each
make their own model call. On a local model every call is a ``generate`` whose cost per
token barely grows with the batch, so eight calls one after another (or fighting over the
cores at once) cost about eight times one call of eight rows. ``BatchingChatModel`` puts
any model with ``generate_many`` (``HFChatModel``, and so the ``tiny`` model) behind a
small queue: a request waits at most ``max_wait`` seconds for others with the same call
options, or until ``max_batch`` of them are there, and they go to the model as one batch.
While the model is busy, new requests gather for the next one; the wait counts from when
the model is free again, so the callers just answered can join it.

Greedy answers are those the model gives one by one (prompts are left-padded and
masked). A sampled call with a seed is sent alone: its draws depend on the batch it is in,
and a seed promises the same answer every time. When a batch fails, each of its requests
is retried alone, so an error reaches only the caller whose request caused it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from stepwise.llm.base import ToolCallingMixin

GenerateMany = Callable[..., list[ChatResult]]  # (conversations, **options) -> one each
IDLE_SECONDS = 1.0  # the background thread ends after this long without a request


@dataclass
class _Request:
    messages: Sequence[BaseMessage]
    options: dict[str, Any]
    key: str | None  # requests with equal keys may share a batch; None: always alone
    arrived: float
    answer: Future = field(default_factory=Future)


def batch_key(options: dict[str, Any], defaults: Any = None) -> str | None:
    """What requests must share to go in one batch: all their call options. None for a
    sampled call with a seed (``defaults``: the model, for options the call leaves out)."""
    def option(name: str, fallback: Any) -> Any:
        value = options.get(name)
        return value if value is not None else getattr(defaults, name, fallback)

    sampled = bool(option("temperature", None)) or int(option("n", 1) or 1) > 1
    if sampled and option("seed", None) is not None:
        return None
    present = {name: value for name, value in options.items() if value is not None}
    return json.dumps(present, sort_keys=True, default=repr)


class GenerationQueue:
    """Gathers requests from many threads into ``generate_many`` calls, one at a time.

    A background thread (started by a request, ended after ``IDLE_SECONDS`` without one)
    takes the oldest request, waits until ``max_batch`` requests with its key are there or
    ``max_wait`` seconds have passed since it arrived or the model became free (whichever is
    later), and answers them from one call.
    """

    def __init__(self, generate_many: GenerateMany, *, max_batch: int = 8,
                 max_wait: float = 0.005, defaults: Any = None) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch is at least 1 and max_wait at least 0 "
                             f"(got {max_batch}, {max_wait})")
        self.generate_many = generate_many
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.defaults = defaults
        self.batch_sizes: list[int] = []  # one per generate_many call, in order
        self._pending: list[_Request] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._free_since = 0.0  # monotonic time the last batch was answered

    def submit(self, messages: Sequence[BaseMessage], options: dict[str, Any]) -> Future:
        """Queue one conversation; its future holds the ``ChatResult`` or the error."""
        request = _Request(messages, dict(options), batch_key(options, self.defaults),
                           time.monotonic())
        with self._ready:
            if self._closed:
                raise RuntimeError("the generation queue is closed")
            self._pending.append(request)
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, daemon=True,
                                                name="stepwise-generation-queue")
                self._worker.start()
            self._ready.notify_all()
        return request.answer

    def generate(self, messages: Sequence[BaseMessage], options: dict[str, Any]) -> ChatResult:
        """``submit`` and wait for the answer."""
        return self.submit(messages, options).result()

    @property
    def pending(self) -> int:
        """Requests waiting for a batch (not those being generated)."""
        with self._ready:
            return len(self._pending)

    def close(self) -> None:
        """Answer what is queued, then stop the background thread."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    # -- the background thread ----------------------------------------------------------

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._answer(batch)
            self._free_since = time.monotonic()

    def _next_batch(self) -> list[_Request] | None:
        with self._ready:
            while not self._pending:
                idle = self._closed or not self._ready.wait(IDLE_SECONDS)
                if idle and not self._pending:
                    self._worker = None  # the next request starts another
                    return None
            first = self._pending[0]
            # At most max_wait from when the model could first take it: the callers just
            # answered need a moment to send their next requests and join this batch.
            deadline = max(first.arrived, self._free_since) + self.max_wait
            while True:
                together = [first] if first.key is None else \
                    [r for r in self._pending if r.key == first.key][:self.max_batch]
                left = deadline - time.monotonic()
                if first.key is None or len(together) >= self.max_batch or left <= 0 \
                        or self._closed:
                    break
                self._ready.wait(left)
            taken = {id(request) for request in together}
            self._pending = [r for r in self._pending if id(r) not in taken]
            return [r for r in together if r.answer.set_running_or_notify_cancel()]

    def _answer(self, batch: list[_Request]) -> None:
        if not batch:  # every request in it was cancelled
            return
        self.batch_sizes.append(len(batch))
        try:
            results = self.generate_many([r.messages for r in batch], **batch[0].options)
            if len(results) != len(batch):
                raise RuntimeError(f"generate_many answered {len(results)} of {len(batch)}")
        except BaseException as exc:  # noqa: BLE001 -- handed to the callers, not raised here
            if len(batch) == 1:
                batch[0].answer.set_exception(exc)
                return
            for request in batch:  # whose request failed: each alone
                self._answer([request])
            return
        for request, result in zip(batch, results, strict=True):
            request.answer.set_result(result)


class BatchingChatModel(ToolCallingMixin, BaseChatModel):
    """A chat model whose concurrent calls reach ``model`` in batches (see the module).

    ``model`` needs ``generate_many(conversations, **options)``, one ``ChatResult`` per
    conversation, as ``HFChatModel`` has. Everything else (tools, structured output,
    ``score_completions``, the name) is the inner model's.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: BaseChatModel
    max_batch: int = Field(default=8, ge=1)  # requests in one generate at most
    max_wait: float = Field(default=0.005, ge=0)  # seconds a request waits for others

    _queue: GenerationQueue = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        generate_many = getattr(self.model, "generate_many", None)
        if not callable(generate_many):
            raise TypeError(f"{type(self.model).__name__} has no generate_many to batch")
        self._queue = GenerationQueue(generate_many, max_batch=self.max_batch,
                                      max_wait=self.max_wait, defaults=self.model)

    @property
    def queue(self) -> GenerationQueue:
        return self._queue

    @property
    def _llm_type(self) -> str:
        return f"batched-{self.model._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self.model._identifying_params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.model._get_ls_params(stop=stop, **kwargs)

    # What callers read off a model (a request cache asks whether calls are greedy).
    @property
    def model_name(self) -> str:
        return getattr(self.model, "model_name", self.model._llm_type)

    @property
    def temperature(self) -> float | None:
        return getattr(self.model, "temperature", None)

    @property
    def n(self) -> int:
        return getattr(self.model, "n", 1)

    def score_completions(self, *args: Any, **kwargs: Any) -> list[float]:
        return self.model.score_completions(*args, **kwargs)  # type: ignore[attr-defined]

    def generate_many(self, conversations: Sequence[Sequence[BaseMessage]],
                      **kwargs: Any) -> list[ChatResult]:
        """Already a batch: straight to the model."""
        return self.model.generate_many(conversations, **kwargs)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Answer what is queued and stop the queue's thread."""
        self._queue.close()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if stop:
            kwargs["stop"] = stop
        return self._queue.generate(messages, kwargs)
