"""Tools reach a local model whatever its template: schemas shown, forced calls valid.

The tiny random model carries SmolLM2's plain ChatML template here, so these run in the
default suite; tests/test_real_model.py repeats the point on the real SmolLM2.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from stepwise.llm import HFChatModel
from stepwise.llm.tool_prompt import template_support

from .test_pair_rendering import SMOLLM2_TEMPLATE


@tool
def lookup_entities() -> str:
    """The recorded translations of names."""
    return "none"


@tool
def set_mode(mode: str) -> str:
    """Pick a mode."""
    return mode


set_mode.args_schema.model_json_schema()  # built once
SET_MODE = {"type": "function", "function": {
    "name": "set_mode", "description": "Pick a mode.",
    "parameters": {"type": "object", "properties": {"mode": {"enum": ["fast", "slow"]}},
                   "required": ["mode"]}}}


@pytest.fixture(scope="module")
def chatml(tiny_path) -> HFChatModel:
    model = HFChatModel(model_path=str(tiny_path), max_tokens=24)
    model._ensure_loaded()
    model.tokenizer.chat_template = SMOLLM2_TEMPLATE
    return model


def _prompt_text(model: HFChatModel, answer: AIMessage) -> str:
    return model.tokenizer.decode(answer.response_metadata["prompt_token_ids"])


def test_a_chatml_template_gets_the_schemas_in_the_system_prompt(chatml):
    assert not template_support(chatml.tokenizer).tools
    answer = chatml.bind_tools([lookup_entities]).invoke("Names?")
    text = _prompt_text(chatml, answer)
    assert "<tools>\nlookup_entities(): The recorded translations of names.\n</tools>" in text
    assert "<tool_call>" in text  # the call format is stated


def test_a_tool_signature_says_types_optional_arguments_defaults_and_ranges():
    from stepwise.llm.tool_prompt import tool_signature

    schema = {"type": "function", "function": {
        "name": "view_pages", "description": "Earlier sentences.",
        "parameters": {"type": "object", "required": ["query"], "properties": {
            "query": {"type": "string", "description": "Words to look for."},
            "pages": {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                                {"type": "null"}], "default": None},
            "k": {"type": "integer", "default": 5, "minimum": 1, "maximum": 20},
            "mode": {"enum": ["fast", "exact"]}}}}}
    assert tool_signature(schema) == (
        'view_pages(query: str, pages?: int[], k?: int = 5, mode?: "fast"|"exact"): '
        "Earlier sentences. query: Words to look for. k: 1 to 20.")


def test_past_calls_render_as_tool_call_text_not_as_an_empty_turn(chatml):
    call = AIMessage("", tool_calls=[{"name": "lookup_entities", "args": {}, "id": "c1"}])
    history = [HumanMessage("Names?"), call, ToolMessage("Tha = 塔", tool_call_id="c1")]
    text = _prompt_text(chatml, chatml.bind_tools([lookup_entities]).invoke(history))
    assert '<tool_call>{"name": "lookup_entities", "arguments": {}}</tool_call>' in text
    assert "Tha = 塔" in text


@pytest.mark.parametrize("choice", ["required", "set_mode"])
def test_a_forced_answer_from_random_weights_is_a_call_never_prose(chatml, choice):
    """Random weights cannot be trusted to finish the JSON, but what they write is a call:
    a valid one or one reported as invalid, which the agent sees as an error."""
    answer = chatml.bind_tools([lookup_entities, SET_MODE], tool_choice=choice).invoke(
        "Go.", seed=0, max_tokens=64)
    assert answer.content == ""
    assert len(answer.tool_calls) + len(answer.invalid_tool_calls) == 1
    for made in answer.tool_calls:
        assert made["name"] in ({"set_mode"} if choice == "set_mode"
                                else {"set_mode", "lookup_entities"})
        if made["name"] == "set_mode":
            assert made["args"] == {"mode": made["args"]["mode"]}
    for broken in answer.invalid_tool_calls:
        assert broken["args"].startswith("{")


def test_a_tool_choice_naming_an_unbound_tool_is_refused(chatml):
    with pytest.raises(ValueError, match="not one of the bound tools"):
        chatml.bind_tools([lookup_entities], tool_choice="view_pages")


def test_every_answer_keeps_its_token_ids_and_logprobs(chatml):
    answer = chatml.invoke("hello", temperature=0.9, seed=3)
    meta = answer.response_metadata
    ids, logprobs = meta["completion_token_ids"], meta["completion_logprobs"]
    assert len(ids) == len(logprobs) > 0 and all(value <= 0 for value in logprobs)
    assert answer.usage_metadata["input_tokens"] == len(meta["prompt_token_ids"])
    # Greedy decoding takes the most likely token, so its log-probability is the highest.
    greedy = chatml.invoke("hello").response_metadata
    import torch

    ids = torch.tensor([greedy["prompt_token_ids"] + greedy["completion_token_ids"][:1]])
    with torch.inference_mode():
        logits = chatml.hf_model(ids).logits[0, -2].log_softmax(-1)
    assert greedy["completion_token_ids"][0] == int(logits.argmax())
    assert greedy["completion_logprobs"][0] == pytest.approx(float(logits.max()), abs=1e-3)


def test_a_template_that_fails_on_empty_content_still_renders_tool_turns(chatml):
    from stepwise.llm.tool_prompt import render_chat

    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "lookup_entities",
                                                       "arguments": "{}"}}]}
    text = render_chat(chatml.tokenizer, [{"role": "user", "content": "Names?"}, call])
    assert '<tool_call>{"name": "lookup_entities", "arguments": {}}</tool_call>' in text
