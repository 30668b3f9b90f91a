"""The request cache: repeated greedy requests are asked once; sampled ones always go out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from langchain_core.messages import HumanMessage

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
