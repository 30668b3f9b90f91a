"""The real SmolLM2-135M-Instruct, offline: tools reach it, calls parse, steps keep tokens.

Marked ``real_model`` (left out of the default run): `stepwise models get smollm2` first,
then `pytest -m real_model`. These check behaviour, not quality: a 135M model answers
badly, but every answer must go where it should.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

pytestmark = pytest.mark.real_model


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@tool
def get_time(timezone: str) -> str:
    """Current time in a timezone."""
    return "noon"


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    from stepwise.llm import HFChatModel

    return HFChatModel(model_path=str(smollm2_path), model_label="hf:smollm2", max_tokens=48)


def test_its_template_renders_no_tools_so_the_schemas_go_into_the_system_prompt(smollm2):
    from stepwise.llm.tool_prompt import template_support

    smollm2._ensure_loaded()
    support = template_support(smollm2.tokenizer)
    assert not support.tools and not support.tool_calls  # plain ChatML
    answer = smollm2.bind_tools([get_weather]).invoke("What's the weather in Paris?")
    prompt = smollm2.tokenizer.decode(answer.response_metadata["prompt_token_ids"])
    assert "<tools>\nget_weather(city: str)" in prompt


def test_ask_answers_with_token_ids_and_logprobs(smollm2):
    answer = smollm2.invoke([HumanMessage("What is the capital of France? One word.")])
    meta = answer.response_metadata
    assert answer.content.strip()
    assert len(meta["completion_token_ids"]) == len(meta["completion_logprobs"]) > 0
    assert all(value <= 0 for value in meta["completion_logprobs"])
    assert answer.usage_metadata["input_tokens"] == len(meta["prompt_token_ids"])
    assert smollm2.tokenizer.decode(meta["completion_token_ids"],
                                    skip_special_tokens=True).strip() == answer.content.strip()


@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_a_forced_tool_call_is_made_and_parsed(smollm2, choice):
    bound = smollm2.bind_tools([get_weather, get_time], tool_choice=choice)
    answer = bound.invoke("What's the weather in Paris?")
    assert answer.invalid_tool_calls == []
    (call,) = answer.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(call["args"].get("city"), str) and call["args"]["city"]
    assert answer.response_metadata["finish_reason"] == "tool_calls"


def test_past_tool_calls_stay_in_the_prompt_as_text(smollm2):
    first = smollm2.bind_tools([get_weather], tool_choice="get_weather").invoke(
        "What's the weather in Paris?")
    from langchain_core.messages import ToolMessage

    history = [HumanMessage("What's the weather in Paris?"), first,
               ToolMessage("sunny in Paris", tool_call_id=first.tool_calls[0]["id"])]
    answer = smollm2.bind_tools([get_weather]).invoke(history)
    prompt = smollm2.tokenizer.decode(answer.response_metadata["prompt_token_ids"])
    assert '<tool_call>{"name": "get_weather"' in prompt and "sunny in Paris" in prompt


def test_the_readme_example_runs_as_written(smollm2_path, monkeypatch):
    """The README's hf:smollm2 snippet, pasted as it is (hf:smollm2 resolves to the cache)."""
    import re

    from .conftest import REPO, USER_CACHE

    monkeypatch.setenv("STEPWISE_CACHE", str(USER_CACHE))
    text = (REPO / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
               if 'from_uri("hf:smollm2"' in b]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 -- our own README
    (call,) = scope["answer"].tool_calls
    assert call["name"] == "get_weather" and call["args"].get("city")
