"""How fast a recorded cassette loads and answers, against langchain's cheapest chat model.

Replay is what tests, searches and training runs sit on, so its cost per call is paid
thousands of times. The baseline is ``GenericFakeChatModel``: the same ``invoke``
machinery with no lookup at all, so the ratio is what keying and decoding a recorded
answer add on top of what any langchain chat model costs.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

from benchmarks import rounded
from stepwise.llm.cassette import FORMAT_VERSION, Cassette
from stepwise.llm.messages import canonical_request, request_key
from stepwise.llm.replay import ReplayChatModel

CASSETTE_ENTRIES = 10_000
SYSTEM_PROMPT = "You are a careful assistant. Answer briefly."
TEMPERATURE = 0

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the document collection.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
]


class Entry:
    """One recorded exchange: the question, whether tools were bound, the answer."""

    def __init__(self, number: int) -> None:
        self.messages: list[BaseMessage] = [
            SystemMessage(SYSTEM_PROMPT),
            HumanMessage(f"question {number}"),
        ]
        self.with_tools = number % 3 == 0
        if self.with_tools and number % 2 == 0:
            self.answer = AIMessage(
                content="",
                tool_calls=[{"name": "calculator", "args": {"expression": f"{number} * 2"},
                             "id": f"call_{number}"}],
            )
        else:
            self.answer = AIMessage(content=f"The answer to question {number} is {number * 7}.")

    def params(self) -> dict:
        params: dict = {"temperature": TEMPERATURE}
        if self.with_tools:
            params["tools"] = TOOLS
        return params


def build_cassette(path: Path, entries: list[Entry]) -> None:
    """Record ``entries`` with the project's own cassette API."""
    cassette = Cassette(path, {"stepwise_cassette": FORMAT_VERSION, "recorded_from": "benchmark"})
    for entry in entries:
        request = canonical_request(entry.messages, entry.params())
        cassette.add(request_key(request), request,
                     ChatResult(generations=[ChatGeneration(message=entry.answer)]))
    cassette.save()


def time_load(path: Path, repeats: int) -> list[float]:
    """Seconds for each of ``repeats`` full ``Cassette.load`` calls."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        cassette = Cassette.load(path)
        seconds.append(time.perf_counter() - start)
        assert len(cassette) == CASSETTE_ENTRIES
    return seconds


def time_calls(plain: Runnable, with_tools: Runnable, calls: list[Entry]) -> float:
    """Seconds to ``invoke`` each call's model (plain or tool-bound) on its messages."""
    start = time.perf_counter()
    for entry in calls:
        (with_tools if entry.with_tools else plain).invoke(entry.messages)
    return time.perf_counter() - start


def check_replayed_answers(replay: ReplayChatModel, sample: list[Entry]) -> None:
    """Every sampled request must come back with exactly the answer recorded for it."""
    with_tools = replay.bind_tools(TOOLS)
    for entry in sample:
        answer = (with_tools if entry.with_tools else replay).invoke(entry.messages)
        assert answer.content == entry.answer.content, (answer.content, entry.answer.content)
        assert answer.tool_calls == entry.answer.tool_calls, (answer.tool_calls, entry.answer)


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else 7
    calls_per_repeat = 500 if quick else 2_000
    rng = random.Random(1234)
    entries = [Entry(number) for number in range(CASSETTE_ENTRIES)]

    with tempfile.TemporaryDirectory(prefix="stepwise-bench-") as folder:
        path = Path(folder) / "replay.jsonl"
        start = time.perf_counter()
        build_cassette(path, entries)
        build_seconds = time.perf_counter() - start
        load_seconds = time_load(path, repeats)

        replay = ReplayChatModel(cassette=str(path), temperature=TEMPERATURE)
        assert len(replay.tape) == CASSETTE_ENTRIES  # load once, outside the timed calls
        check_replayed_answers(replay, rng.sample(entries, 200 if quick else 1_000))

        replay_with_tools = replay.bind_tools(TOOLS)
        ours_seconds, baseline_seconds = [], []
        for repeat in range(repeats):
            calls = rng.sample(entries, calls_per_repeat)
            fake = GenericFakeChatModel(messages=iter([entry.answer for entry in calls]))
            fake_with_tools = fake.bind(tools=TOOLS)
            ours_first = repeat % 2 == 0  # alternate which goes first, so neither is favoured
            for ours in (True, False) if ours_first else (False, True):
                if ours:
                    ours_seconds.append(time_calls(replay, replay_with_tools, calls))
                else:
                    baseline_seconds.append(time_calls(fake, fake_with_tools, calls))
        size_bytes = path.stat().st_size

    ours_us = statistics.median(ours_seconds) / calls_per_repeat * 1e6
    baseline_us = statistics.median(baseline_seconds) / calls_per_repeat * 1e6
    return {
        "figures": {
            "cassette_entries": CASSETTE_ENTRIES,
            "cassette_bytes": size_bytes,
            "build_and_save_s": rounded(build_seconds),
            "load_s_median": rounded(statistics.median(load_seconds)),
            "load_entries_per_s": rounded(CASSETTE_ENTRIES / statistics.median(load_seconds)),
            "replay_calls_per_s": rounded(1e6 / ours_us),
            "replay_per_call_us": rounded(ours_us),
            "calls_per_repeat": calls_per_repeat,
            "repeats": repeats,
        },
        "baseline": {
            "what": "langchain-core GenericFakeChatModel.invoke on the same messages and "
                    "tool bindings: langchain's invoke machinery with no cassette lookup",
            "calls_per_s": rounded(1e6 / baseline_us),
            "per_call_us": rounded(baseline_us),
        },
        "ratio": {"value": rounded(ours_us / baseline_us), "ratio_of": "per_call_us"},
    }
