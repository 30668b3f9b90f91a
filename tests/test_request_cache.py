"""The request cache: repeated greedy requests are asked once; sampled ones always go out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import HumanMessage

from stepwise.errors import ModelBackendError
from stepwise.llm.cache import CachingChatModel
from stepwise.testing.responding import RespondingChatModel


def test_greedy_repeats_are_answered_from_the_cache_and_counted():
    inner = RespondingChatModel(respond=lambda messages, tools: f"seen {messages[-1].text}")
    model = CachingChatModel(model=inner)
    first = model.invoke([HumanMessage("a")])
    again = model.invoke([HumanMessage("a")])
    other = model.invoke([HumanMessage("b")])
    assert first.text == again.text == "seen a" and other.text == "seen b"
    assert len(inner.calls) == 2
    assert model.counts["calls"] == 2 and model.counts["saved"] == 1
    assert model.counts["tokens_in"] > 0
    again.content = "changed by a caller"
    assert model.invoke([HumanMessage("a")]).text == "seen a"  # the cache keeps its own copy


def test_sampled_requests_are_never_cached():
    inner = RespondingChatModel(respond=lambda messages, tools: "x")
    model = CachingChatModel(model=inner)
    for _ in range(3):
        model.invoke([HumanMessage("a")], temperature=0.7)
    assert len(inner.calls) == 3 and model.counts["saved"] == 0


def test_max_concurrent_bounds_calls_in_flight():
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow(messages, tools):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return "ok"

    model = CachingChatModel(model=RespondingChatModel(respond=slow), max_concurrent=2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: model.invoke([HumanMessage(str(i))]), range(16)))
    assert most[0] == 2


class HeldModel:
    """A model whose calls wait for ``release``; ``in_flight`` counts the calls inside."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.in_flight = 0
        self.fail = fail
        self.lock = threading.Lock()

    def respond(self, messages, tools):
        with self.lock:
            self.in_flight += 1
        assert self.release.wait(30)
        if self.fail:
            raise ModelBackendError("the server answered 503")
        return f"seen {messages[-1].text}"

    def release_when(self, ready) -> None:
        """Release once ``ready()`` holds (polled: the callers are threads in flight)."""
        while not ready():
            time.sleep(0.001)
        self.release.set()


def test_concurrent_identical_greedy_requests_share_one_call():
    held = HeldModel()
    inner = RespondingChatModel(respond=held.respond)
    model = CachingChatModel(model=inner)
    prompts = [str(i % 8) for i in range(16)]  # 8 distinct prompts, each sent twice at once
    with ThreadPoolExecutor(16) as pool:
        answers = pool.map(lambda text: model.invoke([HumanMessage(text)]).text, prompts)
        # every duplicate has either joined its twin's call or gone to the model itself
        held.release_when(lambda: model.counts["saved"] + held.in_flight == 16)
        assert list(answers) == [f"seen {text}" for text in prompts]
    assert len(inner.calls) == 8
    assert model.counts["calls"] == 8 and model.counts["saved"] == 8


def test_a_failed_shared_call_fails_its_waiter_too_and_is_not_cached():
    held = HeldModel(fail=True)
    inner = RespondingChatModel(respond=held.respond)
    model = CachingChatModel(model=inner)
    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(model.invoke, [HumanMessage("a")]) for _ in range(2)]
        held.release_when(lambda: model.counts["saved"] + held.in_flight == 2)
        for call in calls:
            with pytest.raises(ModelBackendError, match="503"):
                call.result()
    assert len(inner.calls) == 1 and model.counts["calls"] == 0
    held.fail = False
    assert model.invoke([HumanMessage("a")]).text == "seen a"  # asked again, not a stale error
    assert len(inner.calls) == 2
