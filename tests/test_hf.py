"""The local transformers backend, on the tiny random model built here."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from stepwise.errors import ModelURIError
from stepwise.llm import HFChatModel, from_uri
from stepwise.llm.tool_calls import parse_hermes_tool_calls


def lookup_entities(names: list[str]) -> str:
    """Look up earlier translations of names."""
    return ""


@pytest.fixture(scope="module")
def tiny(tiny_path) -> HFChatModel:
    model = HFChatModel(model_path=str(tiny_path), max_tokens=8)
    model._ensure_loaded()
    return model


def test_generates_text_with_usage(tiny):
    answer = tiny.invoke("hello", temperature=0.9, seed=1)
    assert isinstance(answer, AIMessage) and answer.content
    assert 0 < answer.usage_metadata["output_tokens"] <= 8
    assert answer.usage_metadata["input_tokens"] > 3


def test_seed_makes_sampling_repeatable_and_leaves_global_rng_alone(tiny):
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = tiny.invoke("hello", temperature=1.0, seed=5).content
    assert torch.rand(1) == before  # the caller's RNG stream was not advanced
    assert tiny.invoke("hello", temperature=1.0, seed=5).content == first
    others = {tiny.invoke("hello", temperature=1.0, seed=s).content for s in range(6, 10)}
    assert others - {first}


def test_n_samples_and_batched_generation(tiny):
    result = tiny.generate([[HumanMessage("pick")]], n=3, temperature=1.0, seed=0)
    assert len(result.generations[0]) == 3
    answers = tiny.batch(["short", "a much longer prompt that needs left padding"],
                         temperature=1.0, seed=0)
    assert len(answers) == 2 and all(isinstance(a, AIMessage) for a in answers)


def test_tools_and_tool_turns_are_rendered_by_the_chat_template(tiny):
    history = [
        HumanMessage("How was Nyssi translated?"),
        AIMessage("", tool_calls=[{"name": "lookup_entities", "args": {"names": ["Nyssi"]},
                                   "id": "c1"}]),
        ToolMessage("Nyssi -> 倪西", tool_call_id="c1"),
    ]
    from stepwise.llm.messages import tool_schemas

    prompt = tiny._prompt(history, {"tools": tool_schemas([lookup_entities])})
    assert '"name": "lookup_entities"' in prompt
    assert '<tool_call>{"name": "lookup_entities", "arguments": {"names": ["Nyssi"]}}' in prompt
    assert "<tool_response>\nNyssi -> 倪西\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tiny.bind_tools([lookup_entities]).invoke(history, seed=0, temperature=1.0)


def test_stop_strings_cut_the_answer(tiny):
    free = tiny.invoke("hello", temperature=1.0, seed=3, max_tokens=16).content
    assert len(free) > 2
    cut_at = free[len(free) // 2]
    stopped = tiny.invoke("hello", temperature=1.0, seed=3, max_tokens=16, stop=[cut_at]).content
    assert cut_at not in stopped


def test_hermes_tool_call_parsing():
    text = ('Let me look. <tool_call>{"name": "lookup_entities", "arguments": {"names": ["A"]}}'
            '</tool_call><tool_call>{"name": "x", "arguments": "{\\"k\\": 1}"}</tool_call>'
            '<tool_call>{not json}</tool_call><tool_call>{"arguments": {}}</tool_call>'
            '<tool_call>{"name": "y", "arguments": [1]}</tool_call><tool_call>{"name": "cut"')
    content, calls, invalid = parse_hermes_tool_calls(text)
    assert content == "Let me look."
    assert [(c["name"], c["args"]) for c in calls] == [("lookup_entities", {"names": ["A"]}),
                                                       ("x", {"k": 1})]
    errors = [c["error"] for c in invalid]
    assert len(errors) == 4
    assert errors[0].startswith("invalid JSON") and errors[-1] == "unclosed <tool_call>"
    assert parse_hermes_tool_calls(text)[1][0]["id"] == calls[0]["id"]  # deterministic ids


def test_hf_uri_errors(tmp_path):
    with pytest.raises(ModelURIError, match="no such model directory"):
        from_uri(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ModelURIError, match="no config.json"):
        from_uri(f"hf:{tmp_path}")


def test_model_directory_without_tokenizer(tmp_path, tiny_path):
    import shutil

    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_path / name, tmp_path / name)
    with pytest.raises(ModelURIError, match="no tokenizer"):
        from_uri(f"hf:{tmp_path}").invoke("x")


def test_tiny_uri_loads_and_names_itself(tiny_path):
    answer = from_uri("tiny", max_tokens=4).invoke("hi", temperature=1.0, seed=0)
    assert answer.response_metadata["model_name"] == "tiny"
