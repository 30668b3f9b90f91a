"""The batching queue in front of a local model: same answers, bounded batches, own errors."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import PrivateAttr

from stepwise.llm.batching import BatchingChatModel, GenerationQueue, batch_key
from stepwise.llm.hf import HFChatModel
from stepwise.llm.tiny import tiny_model_path

WAIT = 30  # seconds a test waits for an answer before it fails (never reached when right)


class EchoModel(BaseChatModel):
    """Answers each conversation with its last text; records every batch it is given.
    While ``hold`` is set, the first batch waits for ``release``: the queue then fills."""

    hold: bool = False
    _batches: list[tuple[list[str], dict]] = PrivateAttr(default_factory=list)
    _started: threading.Event = PrivateAttr(default_factory=threading.Event)
    _release: threading.Event = PrivateAttr(default_factory=threading.Event)

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self.generate_many([messages], stop=stop, **kwargs)[0]

    def generate_many(self, conversations, **options: Any) -> list[ChatResult]:
        texts = [str(conversation[-1].content) for conversation in conversations]
        self._batches.append((texts, options))
        if self.hold and len(self._batches) == 1:
            self._started.set()
            assert self._release.wait(WAIT)
        if "boom" in texts:
            raise ValueError("boom cannot be answered")
        return [ChatResult(generations=[ChatGeneration(message=AIMessage(f"echo {text}"))])
                for text in texts]


def held_queue(max_batch: int) -> tuple[GenerationQueue, EchoModel]:
    """A queue whose model is busy with a first request until ``model._release`` is set,
    so that every request submitted meanwhile waits in the queue; once the model is free,
    what is queued goes at once (no wait for more)."""
    model = EchoModel(hold=True)
    queue = GenerationQueue(model.generate_many, defaults=model, max_batch=max_batch,
                            max_wait=0)
    queue.submit([HumanMessage("first")], {})
    assert model._started.wait(WAIT)
    return queue, model


def test_greedy_answers_batched_are_the_answers_one_by_one(tiny_path):
    """Prompts of different lengths, so that the batch is left-padded and masked."""
    model = HFChatModel(model_path=str(tiny_path), max_tokens=12)
    prompts = [[SystemMessage("You answer briefly."),
                HumanMessage("what is two plus three? " * (1 + i % 4) + f"({i})")]
               for i in range(6)]
    alone = [model.invoke(prompt) for prompt in prompts]
    batched = BatchingChatModel(model=model, max_batch=len(prompts), max_wait=WAIT)
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        together = list(pool.map(batched.invoke, prompts))
    assert batched.queue.batch_sizes == [len(prompts)]  # one generate for all six
    for one, other in zip(alone, together, strict=True):
        assert other.content == one.content and other.tool_calls == one.tool_calls
        ours, theirs = other.response_metadata, one.response_metadata
        assert ours["completion_token_ids"] == theirs["completion_token_ids"]
        assert ours["prompt_token_ids"] == theirs["prompt_token_ids"]  # padding left out
        assert ours["completion_logprobs"] == pytest.approx(theirs["completion_logprobs"],
                                                            abs=1e-3)
    batched.close()


def test_a_batch_holds_at_most_max_batch_requests():
    queue, model = held_queue(max_batch=3)
    answers = [queue.submit([HumanMessage(f"r{i}")], {}) for i in range(7)]
    assert queue.pending == 7
    model._release.set()
    assert [answer.result(WAIT).generations[0].message.content for answer in answers] == \
        [f"echo r{i}" for i in range(7)]
    assert queue.batch_sizes == [1, 3, 3, 1]
    assert [texts for texts, _ in model._batches[1:]] == \
        [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    queue.close()


def test_a_full_batch_goes_without_waiting_and_a_lone_request_after_max_wait():
    model = EchoModel()
    full = GenerationQueue(model.generate_many, max_batch=2, max_wait=3600)
    pair = [full.submit([HumanMessage(text)], {}) for text in ("a", "b")]
    assert [answer.result(WAIT).generations[0].message.content for answer in pair] == \
        ["echo a", "echo b"]  # an hour's wait would time this out: the size bound sent it
    alone = GenerationQueue(model.generate_many, max_batch=8, max_wait=0.01)
    assert alone.submit([HumanMessage("c")], {}).result(WAIT).generations[0].message.content \
        == "echo c"  # only one of eight came: the time bound sent it
    assert full.batch_sizes == [2] and alone.batch_sizes == [1]
    full.close()
    alone.close()


def test_requests_with_different_options_are_never_in_one_batch():
    queue, model = held_queue(max_batch=8)
    short = [queue.submit([HumanMessage(f"s{i}")], {"max_tokens": 4}) for i in range(2)]
    long = queue.submit([HumanMessage("l")], {"max_tokens": 64})
    model._release.set()
    for answer in [*short, long]:
        answer.result(WAIT)
    assert [(texts, options) for texts, options in model._batches[1:]] == \
        [(["s0", "s1"], {"max_tokens": 4}), (["l"], {"max_tokens": 64})]
    queue.close()


def test_a_seeded_sampled_call_goes_alone():
    model = EchoModel()
    assert batch_key({"temperature": 0.8, "seed": 3}, model) is None
    assert batch_key({"n": 2, "seed": 3}, model) is None
    assert batch_key({"temperature": 0.8}, model) is not None  # unseeded: draws are free
    assert batch_key({"seed": 3}, model) == batch_key({"seed": 3}, model)  # greedy: seed moot
    queue, held = held_queue(max_batch=8)
    seeded = [queue.submit([HumanMessage(f"x{i}")], {"temperature": 0.8, "seed": 7})
              for i in range(3)]
    held._release.set()
    for answer in seeded:
        answer.result(WAIT)
    assert queue.batch_sizes == [1, 1, 1, 1]
    queue.close()


def test_an_error_in_one_request_reaches_only_its_caller():
    queue, model = held_queue(max_batch=8)
    answers = {text: queue.submit([HumanMessage(text)], {}) for text in ("ok1", "boom", "ok2")}
    model._release.set()
    assert answers["ok1"].result(WAIT).generations[0].message.content == "echo ok1"
    assert answers["ok2"].result(WAIT).generations[0].message.content == "echo ok2"
    with pytest.raises(ValueError, match="boom cannot be answered"):
        answers["boom"].result(WAIT)
    assert queue.batch_sizes == [1, 3, 1, 1, 1]  # the batch failed: each was retried alone
    queue.close()


def test_the_wrapper_is_a_chat_model_that_passes_options_and_tools_through():
    from langchain_core.tools import tool

    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return key

    model = EchoModel()
    batched = BatchingChatModel(model=model, max_wait=0)
    answer = batched.bind_tools([lookup]).invoke("hello", max_tokens=5, stop=["."])
    assert answer.content == "echo hello"
    (_texts, options), = model._batches
    assert options["max_tokens"] == 5 and options["stop"] == ["."]
    assert [schema["function"]["name"] for schema in options["tools"]] == ["lookup"]
    assert batched.temperature is None and batched.n == 1  # what a request cache asks
    with pytest.raises(TypeError, match="generate_many"):
        BatchingChatModel(model=_NoBatch())
    batched.close()


class _NoBatch(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "no-batch"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise AssertionError("never called")


class TestBatchingStandard(ChatModelUnitTests):
    """langchain's standard unit suite, with the tiny model behind the queue."""

    @property
    def chat_model_class(self):
        return BatchingChatModel

    @property
    def chat_model_params(self):
        return {"model": HFChatModel(model_path=str(tiny_model_path(0)))}
