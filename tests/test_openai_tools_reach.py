"""Tools reach the model through an OpenAI-compatible server, and an empty answer is an error.

The fake server checks the wire request; the ``real_model`` test talks to a running
llama-cpp-python server (``--chat_format chatml-function-calling``), which shows the model
no tool schema unless ``tool_choice`` is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from langchain_core.messages import HumanMessage

from stepwise.errors import ConfigError, ModelBackendError
from stepwise.llm import OpenAICompatChatModel, record
from stepwise.testing.openai_server import Reply

LLAMA_SERVER = os.environ.get("STEPWISE_LLAMA_SERVER")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"sunny in {city}"


def client(server, **kwargs) -> OpenAICompatChatModel:
    return OpenAICompatChatModel(base_url=server.url, model="test-model", **kwargs)


def test_bound_tools_send_tool_choice_auto(server):
    client(server).bind_tools([add]).invoke("2+3?")
    assert server.requests[-1]["tool_choice"] == "auto"
    client(server).invoke("no tools")
    assert "tool_choice" not in server.requests[-1] and "tools" not in server.requests[-1]


@pytest.mark.parametrize(("configured", "sent"), [
    ("required", "required"),
    ("none", "none"),
    ("any", "required"),
    ("add", {"type": "function", "function": {"name": "add"}}),
])
def test_tool_choice_is_configurable_per_model(server, configured, sent):
    client(server, tool_choice=configured).bind_tools([add, get_weather]).invoke("x")
    assert server.requests[-1]["tool_choice"] == sent


def test_no_tool_choice_sent_when_configured_off(server):
    client(server, tool_choice=None).bind_tools([add]).invoke("x")
    body = server.requests[-1]
    assert "tool_choice" not in body and body["tools"][0]["function"]["name"] == "add"


def test_the_call_s_tool_choice_wins(server):
    client(server, tool_choice="required").bind_tools([add], tool_choice="none").invoke("x")
    assert server.requests[-1]["tool_choice"] == "none"


def test_a_configured_tool_that_is_not_bound_is_a_config_error(server):
    with pytest.raises(ConfigError, match="'lookup' is not one of the bound tools"):
        client(server, tool_choice="lookup").bind_tools([add]).invoke("x")
    assert server.requests == []


def test_cassette_keys_do_not_change_with_the_sent_tool_choice(server, tmp_path):
    """The replay key is built from the call, not the wire request, so cassettes recorded
    before ``tool_choice`` was sent still answer."""
    cassette = tmp_path / "tools.jsonl"
    record(client(server), str(cassette)).bind_tools([add]).invoke("2+3?")
    assert server.requests[-1]["tool_choice"] == "auto"
    exchange = json.loads(cassette.read_text().splitlines()[1])
    assert "tool_choice" not in exchange["request"]["params"]


@pytest.mark.parametrize("content", ["", "  \n"])
def test_an_empty_answer_is_an_error(server, content):
    server.script(Reply(content=content, finish_reason="length"))
    with pytest.raises(ModelBackendError, match=r"\(model test-model\): empty answer: no content "
                                                r"and no tool calls \(finish_reason=length\)"):
        client(server).bind_tools([add]).invoke("x")


def test_an_empty_streamed_answer_is_an_error(server):
    server.script(Reply(content=""))
    with pytest.raises(ModelBackendError, match="empty answer"):
        list(client(server).stream("x"))


def test_an_empty_async_answer_is_an_error(server):
    server.script(Reply(content=""))
    with pytest.raises(ModelBackendError, match="empty answer"):
        asyncio.run(client(server).ainvoke("x"))


def test_reasoning_alone_is_an_answer(server):
    server.script(Reply(content="", reasoning="still thinking when the budget ran out"))
    answer = client(server).invoke("x")
    assert answer.content == "" and answer.additional_kwargs["reasoning_content"]


def test_tool_calls_alone_are_an_answer(server):
    server.script(Reply(tool_calls=[{"name": "add", "arguments": '{"a": 1, "b": 2}'}]))
    assert client(server).bind_tools([add]).invoke("x").tool_calls[0]["args"] == {"a": 1, "b": 2}


def test_empty_choices_among_several_are_dropped(server):
    server.script(Reply(contents=["", "kept", " "]))
    result = client(server, n=3).generate([[HumanMessage("pick")]])
    assert [g.text for g in result.generations[0]] == ["kept"]
    assert result.generations[0][0].message.usage_metadata is not None  # usage stays on
    assert len(server.requests) == 1


def test_all_choices_empty_is_an_error(server):
    server.script(Reply(contents=["", ""]))
    with pytest.raises(ModelBackendError, match=r"empty answer.*finish_reason=stop\)"):
        client(server, n=2).generate([[HumanMessage("pick")]])


@pytest.mark.real_model
@pytest.mark.skipif(not LLAMA_SERVER, reason="set STEPWISE_LLAMA_SERVER to the base URL of a "
                    "running llama-cpp-python server (--chat_format chatml-function-calling)")
def test_a_real_server_makes_a_tool_call_that_parses():
    model = OpenAICompatChatModel(base_url=LLAMA_SERVER, model="smollm2", max_tokens=64,
                                  temperature=0.0, seed=0, timeout=120)
    started = time.monotonic()
    answer = model.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    seconds = time.monotonic() - started
    assert answer.tool_calls, f"no tool call in {seconds:.1f}s: {answer!r}"
    assert answer.tool_calls[0]["name"] == "get_weather"
    assert isinstance(answer.tool_calls[0]["args"], dict)


def test_a_stream_that_names_its_call_on_every_delta_parses(server):
    """llama-cpp-python repeats a streamed call's name and id on every delta."""
    server.script(Reply(tool_calls=[{"name": "add", "arguments": '{"a": 1, "b": 2}'},
                                    {"name": "get_weather", "arguments": '{"city": "Oslo"}'}],
                        repeat_call_names=True))
    chunks = list(client(server).bind_tools([add, get_weather]).stream("x"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert [(c["name"], c["args"], c["id"]) for c in total.tool_calls] == [
        ("add", {"a": 1, "b": 2}, "call_0_0"), ("get_weather", {"city": "Oslo"}, "call_0_1")]


def test_a_stream_that_ends_with_nothing_is_an_error(server):
    """llama-cpp-python answers a streamed ``tool_choice="auto"`` with 200 and no events."""
    server.script(Reply(content="never sent", cut_after=0))
    with pytest.raises(ModelBackendError, match=r"empty answer: .*finish_reason=None\); the "
                                                r"stream ended unfinished"):
        client(server, streaming=True).bind_tools([add]).invoke("x")
