"""Recording any chat model to a cassette and replaying it exactly, misses explained."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from stepwise.errors import CassetteError, ModelURIError
from stepwise.llm import OpenAICompatChatModel, ReplayChatModel, from_uri, record
from stepwise.testing.openai_server import Reply


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture()
def recorded(server, tmp_path):
    """A cassette recorded from the test server: text, a tool call, n=2, a stream."""
    cassette = tmp_path / "c.jsonl"
    recorder = record(OpenAICompatChatModel(base_url=server.url, model="m"), str(cassette))
    originals = {"text": recorder.invoke([SystemMessage("be brief"), HumanMessage("hello")])}
    server.script(Reply(tool_calls=[{"name": "add", "arguments": '{"a": 1, "b": 2}'}]))
    originals["tool"] = recorder.bind_tools([add]).invoke("add 1 and 2")
    originals["n"] = recorder.generate([[HumanMessage("two please")]], n=2)
    originals["stream"] = "".join(c.content for c in recorder.stream("stream this"))
    return cassette, originals


def test_replay_gives_back_what_was_recorded(recorded):
    cassette, originals = recorded
    replay = ReplayChatModel(cassette=str(cassette))
    text = replay.invoke([SystemMessage("be brief"), HumanMessage("hello")])
    assert text.content == originals["text"].content
    assert text.usage_metadata == originals["text"].usage_metadata
    assert replay.bind_tools([add]).invoke("add 1 and 2").tool_calls == originals["tool"].tool_calls
    samples = replay.generate([[HumanMessage("two please")]], n=2).generations[0]
    assert [g.text for g in samples] == [g.text for g in originals["n"].generations[0]]
    assert "".join(c.content for c in replay.stream("stream this")) == originals["stream"]
    assert asyncio.run(replay.ainvoke("stream this")).content.strip() == "echo: stream this"


def test_replay_streams_tool_calls(recorded):
    cassette, originals = recorded
    chunks = list(ReplayChatModel(cassette=str(cassette)).bind_tools([add]).stream("add 1 and 2"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.tool_calls == originals["tool"].tool_calls


def test_key_ignores_message_ids_and_metadata(recorded):
    cassette, originals = recorded
    message = HumanMessage("hello", id="some-random-id", response_metadata={"x": 1})
    answer = ReplayChatModel(cassette=str(cassette)).invoke([SystemMessage("be brief"), message])
    assert answer.content == originals["text"].content


@pytest.mark.parametrize(("call", "difference"), [
    (lambda m: m.invoke([SystemMessage("be brief"), HumanMessage("helo")]),
     "message 1 (user) content differs at character 3: 'helo' vs recorded 'hello'"),
    (lambda m: m.invoke([SystemMessage("be brief"), HumanMessage("hello")], temperature=0.7),
     "temperature=0.7 vs recorded null"),
    (lambda m: m.invoke("add 1 and 2"), "tools [] vs recorded ['add']"),
    (lambda m: m.invoke([SystemMessage("be brief"), HumanMessage("hello"), HumanMessage("more")]),
     "3 messages vs 2 recorded"),
])
def test_a_miss_names_the_closest_request_and_what_differs(recorded, call, difference):
    cassette, _ = recorded
    with pytest.raises(CassetteError) as caught:
        call(ReplayChatModel(cassette=str(cassette)))
    assert "no recorded answer" in str(caught.value) and "4 recorded requests" in str(caught.value)
    assert difference in str(caught.value)


def test_repeated_requests_replay_in_recorded_order(tmp_path, tiny_path):
    cassette = tmp_path / "sampled.jsonl"
    recorder = record(from_uri("tiny", max_tokens=6), str(cassette), temperature=1.0)
    first, second = recorder.invoke("same"), recorder.invoke("same")
    assert first.content != second.content  # sampling without a seed gave two answers
    replay = ReplayChatModel(cassette=str(cassette), temperature=1.0)
    assert [replay.invoke("same").content for _ in range(3)] == [
        first.content, second.content, second.content]


def test_cassette_is_always_complete_on_disk(server, tmp_path):
    cassette = tmp_path / "deep" / "c.jsonl"
    recorder = record(OpenAICompatChatModel(base_url=server.url, model="m"), str(cassette))
    for i in range(3):
        recorder.invoke(f"q{i}")
        lines = cassette.read_text().splitlines()
        assert len(lines) == i + 2 and all(json.loads(line) for line in lines)
    assert [p.name for p in cassette.parent.iterdir()] == ["c.jsonl"]  # no temporary files left


def test_missing_and_corrupt_cassettes(tmp_path):
    with pytest.raises(CassetteError, match="cassette not found"):
        ReplayChatModel(cassette=str(tmp_path / "none.jsonl")).invoke("x")
    with pytest.raises(CassetteError, match="cassette not found"):
        from_uri(f"replay:{tmp_path / 'none.jsonl'}")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stepwise_cassette": 1}\n{"key": "k", "request": {}, "res\n{}\n')
    with pytest.raises(CassetteError, match=r"bad.jsonl:2: corrupt cassette line"):
        from_uri(f"replay:{bad}")
    bad.write_text('{"something": "else"}\n')
    with pytest.raises(CassetteError, match="not a stepwise cassette"):
        from_uri(f"replay:{bad}")


def test_unknown_uris():
    with pytest.raises(ModelURIError, match="unknown model URI scheme 'gpt'"):
        from_uri("gpt:4")
    with pytest.raises(ModelURIError, match="unknown simulated world 'nope'"):
        from_uri("sim:nope")
    with pytest.raises(ModelURIError, match="needs a model name"):
        from_uri("openai:http://127.0.0.1:8000/v1")
    assert from_uri("sim:echo").invoke("hi").content == "echo: hi"


def test_integral_floats_and_ints_key_the_same(recorded):
    from stepwise.llm.messages import canonical_request, request_key

    message = [HumanMessage("x")]
    assert request_key(canonical_request(message, {"temperature": 0})) == request_key(
        canonical_request(message, {"temperature": 0.0}))
    assert request_key(canonical_request(message, {"temperature": 0.5})) != request_key(
        canonical_request(message, {"temperature": 0}))
