"""The OpenAI-compatible client over real HTTP against the local test server, faults included."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from stepwise.errors import ModelBackendError
from stepwise.llm import OpenAICompatChatModel
from stepwise.testing.openai_server import Reply, token_id


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def client(server, **kwargs) -> OpenAICompatChatModel:
    return OpenAICompatChatModel(base_url=server.url, model="test-model", **kwargs)


def test_plain_answer_with_usage_and_request_body(server):
    answer = client(server, temperature=0.2, seed=3, max_tokens=50).invoke("hello there")
    assert answer.content == "echo: hello there"
    assert answer.usage_metadata["output_tokens"] == 3
    body = server.requests[-1]
    assert body["temperature"] == 0.2 and body["seed"] == 3 and body["max_tokens"] == 50
    assert body["messages"] == [{"role": "user", "content": "hello there"}]


def test_tool_calls_and_history_go_over_the_wire(server):
    server.script(Reply(tool_calls=[{"name": "add", "arguments": '{"a": 2, "b": 3}'}]))
    model = client(server).bind_tools([add], tool_choice="add")
    answer = model.invoke("what is 2+3?")
    assert answer.tool_calls == [
        {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_0_0", "type": "tool_call"}
    ]
    body = server.requests[-1]
    assert body["tools"][0]["function"]["name"] == "add"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    history = [HumanMessage("what is 2+3?"), answer, ToolMessage("5", tool_call_id="call_0_0")]
    client(server).invoke(history)
    sent = server.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"a": 2, "b": 3}'
    assert sent[2] == {"role": "tool", "content": "5", "tool_call_id": "call_0_0"}


def test_malformed_tool_call_json_is_an_invalid_tool_call_not_an_exception(server):
    server.script(Reply(tool_calls=[
        {"name": "add", "arguments": '{"a": 2, "b": '},
        {"name": "add", "arguments": "[1, 2]"},
        {"name": "add", "arguments": '{"a": 1, "b": 1}'},
    ]))
    answer = client(server).bind_tools([add]).invoke("add")
    assert [c["args"] for c in answer.tool_calls] == [{"a": 1, "b": 1}]
    assert len(answer.invalid_tool_calls) == 2
    assert all(c["name"] == "add" and c["error"] for c in answer.invalid_tool_calls)


def test_n_samples_from_one_request(server):
    result = client(server, n=3).generate([[HumanMessage("pick")]])
    assert [g.text for g in result.generations[0]] == [f"echo[{i}]: pick" for i in range(3)]
    assert len(server.requests) == 1 and server.requests[0]["n"] == 3
    per_call = client(server).generate([[HumanMessage("pick")]], n=2)
    assert len(per_call.generations[0]) == 2 and server.requests[-1]["n"] == 2


def test_vllm_extras_reach_the_server(server):
    model = client(server, chat_template_kwargs={"enable_thinking": False},
                   thinking_token_budget=64)
    model.invoke("x", structured_outputs={"choice": ["a", "b"]}, top_p=0.9)
    body = server.requests[-1]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["thinking_token_budget"] == 64
    assert body["structured_outputs"] == {"choice": ["a", "b"]}
    assert body["top_p"] == 0.9


def test_reasoning_text_is_kept(server):
    server.script(Reply(content="42", reasoning="six times seven"))
    answer = client(server).invoke("answer?")
    assert answer.content == "42"
    assert answer.additional_kwargs["reasoning_content"] == "six times seven"


class Verdict(BaseModel):
    label: str
    score: int


def test_structured_output_json_schema(server):
    server.script(Reply(content='{"label": "good", "score": 7}'))
    verdict = client(server).with_structured_output(Verdict).invoke("judge")
    assert verdict == Verdict(label="good", score=7)
    response_format = server.requests[-1]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["properties"]["score"]["type"] == "integer"


def test_structured_output_function_calling(server):
    server.script(Reply(tool_calls=[{"name": "Verdict", "arguments": '{"label": "x", "score": 1}'}]))
    verdict = client(server).with_structured_output(Verdict, method="function_calling").invoke("j")
    assert verdict == Verdict(label="x", score=1)


def test_retries_through_transient_5xx_and_429(server):
    server.script(Reply(status=500), Reply(status=429), Reply(content="finally"))
    assert client(server, max_retries=2).invoke("x").content == "finally"
    assert len(server.requests) == 3


def test_persistent_5xx_is_one_clear_error(server):
    server.script(*[Reply(status=503)] * 3)
    with pytest.raises(ModelBackendError, match="HTTP 503"):
        client(server, max_retries=1).invoke("x")
    assert len(server.requests) == 2


def wait_for_hangups(server, count: int) -> list[int]:
    deadline = time.monotonic() + 2.0
    while len(server.hangups) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.hangups


def test_a_timeout_is_cancelled_counted_and_not_retried(server):
    server.script(Reply(delay=3.0), Reply(delay=3.0), Reply(content="never asked"))
    model = client(server, timeout=0.2, max_retries=2)
    with pytest.raises(ModelBackendError, match=r"no answer within 0.2s, request cancelled, "
                                                r"not retried \(timeouts so far: 1\)"):
        model.invoke("x")
    assert len(server.requests) == 1  # a busy single-slot server gets no second request
    # the server saw the connection closed before its 3 s answer: the client gave up at the
    # timeout instead of waiting it out
    assert wait_for_hangups(server, 1) == [0]
    with pytest.raises(ModelBackendError, match=r"timeouts so far: 2"):
        model.bind_tools([add]).invoke("y")  # a bound model counts on the same model
    assert model.timeouts == 2 and wait_for_hangups(server, 2) == [0, 1]


def test_an_async_timeout_is_cancelled_and_counted(server):
    server.script(Reply(delay=3.0))
    model = client(server, timeout=0.2)
    with pytest.raises(ModelBackendError, match="timeouts so far: 1"):
        asyncio.run(model.ainvoke("x"))
    assert len(server.requests) == 1 and wait_for_hangups(server, 1) == [0]


def test_a_streamed_timeout_is_counted(server):
    server.script(Reply(delay=3.0))
    model = client(server, timeout=0.2)
    with pytest.raises(ModelBackendError, match="no answer within 0.2s"):
        list(model.stream("x"))
    assert model.timeouts == 1 and len(server.requests) == 1


def test_a_trickling_stream_ends_at_the_timeout(server):
    server.script(Reply(content=" ".join(["word"] * 40), chunk_delay=0.05))
    model = client(server, timeout=0.4)
    started = time.monotonic()
    pieces = []
    with pytest.raises(ModelBackendError, match=r"no answer within 0.4s.*timeouts so far: 1"):
        for chunk in model.stream("x"):
            pieces.append(chunk.content)
    assert time.monotonic() - started >= 0.4  # each read was quick; the whole was not
    assert 3 < len(pieces) < 40 and model.timeouts == 1  # cut off partway, at the deadline
    assert wait_for_hangups(server, 1) == [0]  # the connection was closed, not left open


def test_an_abandoned_stream_closes_its_connection(server):
    server.script(Reply(content=" ".join(["word"] * 40), chunk_delay=0.05))
    stream = client(server).stream("x")
    next(stream)
    stream.close()
    assert wait_for_hangups(server, 1) == [0]


def test_a_slow_stream_within_the_timeout_is_whole(server):
    server.script(Reply(content="five words arrive in time", chunk_delay=0.02))
    assert "".join(c.content for c in client(server, timeout=2).stream("x")).split() == [
        "five", "words", "arrive", "in", "time"]
    assert server.hangups == []


def test_an_async_trickling_stream_ends_at_the_timeout(server):
    server.script(Reply(content=" ".join(["word"] * 40), chunk_delay=0.05))
    model = client(server, timeout=0.3)

    async def run():
        return [chunk.content async for chunk in model.astream("x")]

    with pytest.raises(ModelBackendError, match="timeouts so far: 1"):
        asyncio.run(run())
    assert wait_for_hangups(server, 1) == [0]


def test_timeouts_are_retried_when_asked(server):
    server.script(Reply(delay=1.0), Reply(content="fast"))
    model = client(server, timeout=0.3, max_retries=1, retry_timeouts=True)
    assert model.invoke("x").content == "fast"
    assert model.timeouts == 1 and len(server.requests) == 2


def test_retried_timeouts_still_end(server):
    server.script(Reply(delay=1.0), Reply(delay=1.0))
    model = client(server, timeout=0.2, max_retries=1, retry_timeouts=True)
    with pytest.raises(ModelBackendError, match=r"after 1 retries \(timeouts so far: 2\)"):
        model.invoke("x")


def test_a_client_error_is_not_retried(server):
    server.script(Reply(status=400), Reply(content="never asked"))
    with pytest.raises(ModelBackendError, match="HTTP 400 after 0 retries"):
        client(server, max_retries=2).invoke("x")
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", ["<html>oops</html>", '{"unexpected": true}'])
def test_garbage_answer_is_one_clear_error(server, body):
    server.script(Reply(body=body))
    with pytest.raises(ModelBackendError, match="model server"):
        client(server, max_retries=0).invoke("x")


def test_server_down():
    model = OpenAICompatChatModel(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    with pytest.raises(ModelBackendError, match="cannot connect"):
        model.invoke("x")


def test_streaming_text_and_tool_calls(server):
    server.script(Reply(content="adding them now", reasoning="easy",
                        tool_calls=[{"name": "add", "arguments": '{"a": 1, "b": 2}'}]))
    chunks = list(client(server).bind_tools([add]).stream("1+2"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content.strip() == "adding them now"
    assert total.tool_calls[0]["args"] == {"a": 1, "b": 2}
    assert total.additional_kwargs["reasoning_content"] == "easy"
    assert total.usage_metadata["output_tokens"] == 3
    assert server.requests[-1]["stream"] is True


def test_async_invoke_and_stream(server):
    model = client(server)

    async def run():
        answer = await model.ainvoke("async hello")
        pieces = [chunk.content async for chunk in model.astream("streamed")]
        return answer, "".join(pieces)

    answer, streamed = asyncio.run(run())
    assert isinstance(answer, AIMessage) and answer.content == "echo: async hello"
    assert streamed.strip() == "echo: streamed"


def test_no_token_data_unless_asked(server):
    answer = client(server).invoke("one two")
    body = server.requests[-1]
    assert "logprobs" not in body and "return_token_ids" not in body
    assert not {"prompt_token_ids", "completion_token_ids", "completion_logprobs"} & set(
        answer.response_metadata)


def test_token_data_from_a_vllm_like_server(server):
    answer = client(server, return_token_data=True).invoke("one two")
    body = server.requests[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 0
    assert body["return_token_ids"] is True
    meta = answer.response_metadata
    assert meta["prompt_token_ids"] == [token_id("one"), token_id("two")]
    assert meta["completion_token_ids"] == [token_id(w) for w in ("echo:", "one", "two")]
    assert meta["completion_logprobs"] == [-0.25, -0.5, -0.75]


def test_token_data_from_a_server_without_token_ids(server):
    server.script(Reply(content="just logprobs", token_ids=False))  # as llama.cpp answers
    meta = client(server, return_token_data=True).invoke("x").response_metadata
    assert meta["completion_logprobs"] == [-0.25, -0.5]
    assert "prompt_token_ids" not in meta and "completion_token_ids" not in meta


def test_token_data_per_choice(server):
    server.script(Reply(contents=["a b", "c"]))
    result = client(server, n=2, return_token_data=True).generate([[HumanMessage("p q r")]])
    metas = [g.message.response_metadata for g in result.generations[0]]
    assert [m["completion_token_ids"] for m in metas] == [[token_id("a"), token_id("b")],
                                                          [token_id("c")]]
    assert [m["completion_logprobs"] for m in metas] == [[-0.25, -0.5], [-0.25]]
    assert all(m["prompt_token_ids"] == [token_id(w) for w in ["p", "q", "r"]] for m in metas)


def test_streamed_token_data_adds_up_to_the_whole_answer(server):
    server.script(Reply(content="three streamed words"))
    chunks = list(client(server, return_token_data=True).stream("a b"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    meta = total.response_metadata
    assert meta["prompt_token_ids"] == [token_id("a"), token_id("b")]
    assert meta["completion_token_ids"] == [token_id(w) for w in ["three", "streamed", "words"]]
    assert meta["completion_logprobs"] == [-0.25, -0.5, -0.75]
