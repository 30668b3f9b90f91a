"""Recording N exchanges to a cassette: one appended line per call vs a rewrite per call.

A recording of a search or a training run makes thousands of model calls, and each must
be on disk before the next (a killed run keeps what it recorded). Ours is
``Cassette.append``: the first exchange is written atomically with the header, every
later one is one appended line, flushed and synced. The baseline is what recording did
before: ``Cassette.add`` then ``Cassette.save``, a whole-file atomic rewrite (temporary
file, fsync, rename) per call. Both write the same exchanges (a system prompt, a question
of about 300 characters and a short answer) to a fresh cassette in the same temporary
folder; the figures are microseconds per call at a short and a long recording, so a cost
per call that grows with the recording's length shows as a growth above 1, and the bytes
each way wrote in all (from the file's size after every call). Every call waits for an
fsync either way, so on a disk with slow syncs the times are closer than the bytes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from benchmarks import rounded
from stepwise.llm.cassette import FORMAT_VERSION, Cassette
from stepwise.llm.messages import canonical_request, request_key

HEADER = {"stepwise_cassette": FORMAT_VERSION, "recorded_from": "benchmark"}
QUESTION = "Translate this page, keeping every name as the entity memory has it. " * 4


def exchanges(count: int) -> list[tuple[str, dict, ChatResult]]:
    """``count`` distinct exchanges, keyed as a recorder keys them."""
    made = []
    for number in range(count):
        request = canonical_request([SystemMessage("You are a careful translator."),
                                     HumanMessage(f"{number}: {QUESTION}")], {"temperature": 0})
        answer = AIMessage(content=f"The translation of page {number}.")
        made.append((request_key(request), request,
                     ChatResult(generations=[ChatGeneration(message=answer)])))
    return made


def appending(path: Path, calls: list[tuple[str, dict, ChatResult]]) -> tuple[float, int]:
    """Seconds to record ``calls`` one appended line each, and the bytes written."""
    cassette, written, size = Cassette(path, dict(HEADER)), 0, 0
    start = time.perf_counter()
    for key, request, result in calls:
        cassette.append(key, request, result)
        grown = path.stat().st_size
        written, size = written + (grown if size == 0 else grown - size), grown
    return time.perf_counter() - start, written


def rewriting(path: Path, calls: list[tuple[str, dict, ChatResult]]) -> tuple[float, int]:
    """Seconds to record ``calls`` rewriting the whole file each time, and the bytes written."""
    cassette, written = Cassette(path, dict(HEADER)), 0
    start = time.perf_counter()
    for key, request, result in calls:
        cassette.add(key, request, result)
        cassette.save()
        written += path.stat().st_size
    return time.perf_counter() - start, written


def run(quick: bool = False) -> dict:
    short, long = (100, 400) if quick else (250, 2_000)
    calls = exchanges(long)
    ours, baseline, written = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="stepwise-bench-") as folder:
        for count in (short, long):
            for name, measure, into in (("append", appending, ours),
                                        ("rewrite", rewriting, baseline)):
                path = Path(folder) / f"{name}-{count}.jsonl"
                seconds, written[name, count] = measure(path, calls[:count])
                into[count] = seconds / count * 1e6
                assert len(Cassette.load(path)) == count  # both wrote every exchange
        size_bytes = (Path(folder) / f"append-{long}.jsonl").stat().st_size
    return {
        "figures": {
            "calls_short": short,
            "calls_long": long,
            "cassette_bytes_long": size_bytes,
            "per_call_us_short": rounded(ours[short]),
            "per_call_us_long": rounded(ours[long]),
            "growth_long_over_short": rounded(ours[long] / ours[short]),
            "bytes_written_long": written["append", long],
        },
        "baseline": {
            "what": "Cassette.add + Cassette.save per call: the whole cassette rewritten "
                    "atomically (temporary file, fsync, rename) after every exchange",
            "per_call_us_short": rounded(baseline[short]),
            "per_call_us_long": rounded(baseline[long]),
            "growth_long_over_short": rounded(baseline[long] / baseline[short]),
            "bytes_written_long": written["rewrite", long],
        },
        "ratio": {"value": rounded(ours[long] / baseline[long]), "ratio_of": "per_call_us_long"},
    }
