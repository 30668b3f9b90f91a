"""What the OpenAI-compatible chat model adds to each request, against a bare HTTP POST.

Against a real server a model's own latency hides client overhead; against the local
test server (an echo, answering at once) it is most of what is measured. The baseline
is one keep-alive ``httpx.Client`` posting the same JSON body and parsing the answer, so
the difference is the cost of the ``openai`` SDK, langchain's ``invoke`` and our message
conversion per request. The server runs in this process, so both sides share its cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from benchmarks import percentile, rounded
from stepwise.llm.openai_compat import OpenAICompatChatModel
from stepwise.testing.openai_server import OpenAITestServer

MODEL = "test-model"
PROMPT = "hello"
EXPECTED_ANSWER = f"echo: {PROMPT}"  # what the test server answers an unscripted request


def ours_request(server_url: str) -> Callable[[], str]:
    """One ``OpenAICompatChatModel.invoke`` per call, returning the answer's text."""
    model = OpenAICompatChatModel(base_url=server_url, model=MODEL)

    def call() -> str:
        return model.invoke(PROMPT).content

    return call


def bare_http_request(client: httpx.Client, server_url: str) -> Callable[[], str]:
    """One POST of the equivalent body on a keep-alive client, returning the answer's text."""
    url = f"{server_url}/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"Authorization": "Bearer EMPTY"}

    def call() -> str:
        response = client.post(url, json=body, headers=headers)
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

    return call


def time_block(call: Callable[[], str], count: int) -> list[float]:
    """Seconds for each of ``count`` calls; every answer must be the expected echo."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        answer = call()
        seconds.append(time.perf_counter() - start)
        assert answer == EXPECTED_ANSWER, answer
    return seconds


def summary(seconds: list[float]) -> dict:
    return {
        "median_us": rounded(percentile(seconds, 0.5) * 1e6),
        "p90_us": rounded(percentile(seconds, 0.9) * 1e6),
        "requests_per_s": rounded(len(seconds) / sum(seconds)),
        "requests": len(seconds),
    }


def run(quick: bool = False) -> dict:
    requests_per_side = 100 if quick else 500
    block_size = 25 if quick else 50
    warmup = 10 if quick else 50

    with (
        OpenAITestServer() as server,
        httpx.Client(timeout=30.0) as client,
    ):
        ours = ours_request(server.url)
        baseline = bare_http_request(client, server.url)
        time_block(ours, warmup)
        time_block(baseline, warmup)

        ours_seconds: list[float] = []
        baseline_seconds: list[float] = []
        for block in range(requests_per_side // block_size):
            pair = [(ours, ours_seconds), (baseline, baseline_seconds)]
            for call, seconds in pair if block % 2 == 0 else reversed(pair):
                seconds.extend(time_block(call, block_size))

    ours_figures = summary(ours_seconds)
    baseline_figures = summary(baseline_seconds)
    ours_median = percentile(ours_seconds, 0.5)
    baseline_median = percentile(baseline_seconds, 0.5)
    return {
        "figures": {
            **ours_figures,
            "overhead_us_per_request": rounded((ours_median - baseline_median) * 1e6),
            "block_size": block_size,
            "warmup_requests": warmup,
        },
        "baseline": {
            "what": "bare httpx.Client POST of the equivalent JSON body to /chat/completions "
                    "on one keep-alive connection, answer parsed with response.json()",
            **baseline_figures,
        },
        "ratio": {"value": rounded(ours_median / baseline_median), "ratio_of": "median_us"},
    }
