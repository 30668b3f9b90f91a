"""Pairs rendered as the trainer sees them under a real plain-ChatML template (SmolLM2's),
and the token record of model calls carried from an answer into trees and pairs.

The tokenizer is the tiny one with SmolLM2-135M-Instruct's chat template put in its place:
that template ignores ``tools=`` and renders a tool-call turn as an empty assistant turn.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from stepwise.llm.token_data import call_tokens
from stepwise.llm.tool_prompt import template_support, tool_signature
from stepwise.search.pair_templates import (
    SAME_TOKENS_REASON,
    rendered_ids,
    template_problem,
    template_row,
)
from stepwise.search.pairs import check_prefix, extract_pairs, read_pairs, write_pairs
from stepwise.search.tree import Tree, load_tree
from stepwise.train.pair_checks import check_pairs, row_problem

# SmolLM2-135M-Instruct's chat_template, as its tokenizer ships it.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_entities", "description": "Earlier translations of names.",
        "parameters": {"type": "object", "required": ["names"], "properties": {
            "names": {"type": "array", "items": {"type": "string"}}}}}},
    {"type": "function", "function": {
        "name": "view_summaries", "description": "Summaries of earlier pages.",
        "parameters": {"type": "object", "properties": {}}}},
]
SYSTEM = {"role": "system", "content": "You translate a document page by page."}


def call(name: str, arguments: dict, call_id: str = "call_0") -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


def turn(*calls: dict) -> list[dict]:
    return [{"role": "assistant", "content": "", "tool_calls": list(calls)}]


def prompt(page: int, system: bool = True) -> list[dict]:
    messages = [SYSTEM] if system else []
    if page > 1:  # a history with an earlier call and its result
        messages += [{"role": "user", "content": f"Page {page - 1}: Anna left."},
                     *turn(call("lookup_entities", {"names": ["Anna"]}, "call_7")),
                     {"role": "tool", "tool_call_id": "call_7", "content": "Anna -> 安娜"}]
    return [*messages, {"role": "user", "content": f"Page {page}: Anna waited at the station."}]


def tool_only_pair(page: int, system: bool = True) -> dict:
    """Chosen and rejected differ only in which tool they call."""
    return {"prompt": prompt(page, system),
            "chosen": turn(call("lookup_entities", {"names": ["Anna"]})),
            "rejected": turn(call("view_summaries", {})),
            "tools": json.dumps(TOOLS)}


@pytest.fixture(scope="module")
def smollm2(tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def smollm2_model(tiny_path, smollm2, tmp_path_factory):
    """The tiny model's folder with SmolLM2's template: trains as ``hf:DIR``."""
    folder = tmp_path_factory.mktemp("smollm2-template") / "model"
    shutil.copytree(tiny_path, folder)
    smollm2.save_pretrained(folder)
    return folder


def test_the_template_is_probed_as_rendering_no_tools_calls_or_results(smollm2, tiny_path):
    from transformers import AutoTokenizer

    support = template_support(smollm2)  # a tool turn renders as "<|im_start|>tool\n..."
    assert (support.tools, support.tool_calls, support.tool_results) == (False, False, True)
    assert template_support(AutoTokenizer.from_pretrained(tiny_path)).complete


def test_pairs_differing_only_in_tool_calls_collapse_raw_and_stay_apart_rewritten(smollm2):
    for row in (tool_only_pair(1), tool_only_pair(2), tool_only_pair(2, system=False)):
        assert row_problem(row) is None  # as message dicts they differ
        assert template_problem(row, smollm2, rewrite=False) == SAME_TOKENS_REASON
        assert template_problem(row, smollm2) is None
        ids = rendered_ids(row, smollm2)
        assert ids["chosen"] != ids["rejected"]
        prompt_text = smollm2.decode(ids["prompt"])
        assert prompt_text.endswith("<|im_start|>assistant\n")
        assert all(tool_signature(tool) in prompt_text for tool in TOOLS)  # tools reach it
        assert smollm2.decode(ids["chosen"]).startswith(
            '<tool_call>{"name": "lookup_entities", "arguments": {"names": ["Anna"]}}</tool_call>')
        assert "view_summaries" in smollm2.decode(ids["rejected"])


def test_the_rewrite_keeps_prompt_and_prompt_plus_step_consistent(smollm2):
    row = template_row(tool_only_pair(2, system=False), smollm2)
    assert "tools" not in row  # the schemas live in the system prompt now
    assert row["prompt"][0]["role"] == "system" and "<tools>" in row["prompt"][0]["content"]
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "tool", "user"]
    assert row["prompt"][2]["content"].startswith('<tool_call>{"name": "lookup_entities"')
    assert row["chosen"] == [{"role": "assistant", "content": '<tool_call>{"name": '
                              '"lookup_entities", "arguments": {"names": ["Anna"]}}</tool_call>'}]
    whole = smollm2.apply_chat_template([*row["prompt"], *row["chosen"]], tokenize=False)
    alone = smollm2.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert whole.startswith(alone)


def test_a_template_that_renders_tools_gets_the_row_unchanged(tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    row = tool_only_pair(2)
    assert template_row(row, tokenizer) == row
    assert template_problem(row, tokenizer) is None


def test_the_pair_check_refuses_pairs_that_render_the_same_and_notes_the_template(
        smollm2, tmp_path):
    same_call = {**tool_only_pair(1),  # differs only in the call id, which is not rendered
                 "rejected": turn(call("lookup_entities", {"names": ["Anna"]}, "call_other"))}
    rows = [tool_only_pair(1), tool_only_pair(2), same_call, tool_only_pair(3, system=False)]
    path = write_pairs(rows, tmp_path / "pairs.jsonl")
    kept, report = check_pairs(path, smollm2)
    assert kept == [rows[0], rows[1], rows[3]]
    assert dict(report.dropped) == {SAME_TOKENS_REASON: 1} and report.examples[SAME_TOKENS_REASON] == [3]
    assert len(report.notes) == 1 and "drops tool calls" in report.notes[0]
    assert "3 of 3 kept pairs would render chosen and rejected to the same tokens" in report.notes[0]
    assert report.as_dict()["notes"] == report.notes
    assert check_prefix(rows, smollm2) == ([rows[0], rows[1], rows[3]], 1)  # the explorer's check


def test_the_pair_check_has_no_note_for_a_template_that_renders_tool_calls(tiny_path, tmp_path):
    from transformers import AutoTokenizer

    path = write_pairs([tool_only_pair(1), tool_only_pair(2)], tmp_path / "pairs.jsonl")
    kept, report = check_pairs(path, AutoTokenizer.from_pretrained(tiny_path))
    assert len(kept) == 2 and not report.dropped and report.notes == []


def test_dpo_on_tool_only_pairs_under_the_smollm2_template_has_a_reward_margin(
        smollm2_model, tmp_path):
    from stepwise.train.dpo import DPOSettings, train_dpo

    rows = [tool_only_pair(page, system=page % 2 == 0) for page in range(1, 7)]
    pairs = write_pairs(rows, tmp_path / "pairs.jsonl")
    result = train_dpo(pairs, f"hf:{smollm2_model}", tmp_path / "out",
                       DPOSettings(max_steps=4, eval_frac=0.0, learning_rate=1e-3, batch_size=3))
    assert result.steps == 4 and result.pairs["kept"] == 6 and result.pairs["notes"]
    # Raw, chosen and rejected were the same tokens: margin 0 and logps equal at every step.
    assert result.train_fit["reward_margin"] > 0
    assert result.train_fit["logps_chosen"] != result.train_fit["logps_rejected"]


# -- token records -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_hf(tiny_path):
    from stepwise.llm.hf import HFChatModel

    return HFChatModel(model_path=str(tiny_path), max_tokens=6)


def tree_of_answers(first, second) -> Tree:
    """A root with two model-made children (the first preferred) and, under the first,
    two rule-made children without a token record."""
    from stepwise.llm.messages import training_dicts

    tree = Tree.new(task="t-1", env="test", seed=0, tools=TOOLS, options={"q": "mean"})
    tree.root.visits, tree.root.wins, tree.root.prompt = 4, 2.0, prompt(1)
    for answer, wins in ((first, 1.5), (second, 0.5)):
        node = tree.add_child(0, "act", "act")
        node.visits, node.wins = 2, wins
        node.completion, node.call_tokens = training_dicts([answer]), call_tokens(answer)
    tree.nodes[1].prompt = prompt(2)
    for completion, wins in ((turn(call("view_summaries", {})), 0.9),
                             ([{"role": "assistant", "content": "No memory needed."}], 0.1)):
        node = tree.add_child(1, None, "rule")
        node.visits, node.wins, node.completion = 1, wins, completion
    return tree


def test_an_hf_answers_token_ids_reach_the_pair_meta_and_survive_the_file(tiny_hf, tmp_path):
    import pyarrow.json
    from datasets import load_dataset
    from langchain_core.messages import HumanMessage

    answers = [tiny_hf.invoke([HumanMessage("Page 1: Anna waited.")], seed=seed,
                              temperature=1.0) for seed in (1, 2)]
    records = [call_tokens(a) for a in answers]
    for record in records:
        assert set(record) == {"prompt_token_ids", "completion_token_ids",
                               "completion_logprobs", "model"}
        assert record["prompt_token_ids"] and record["completion_token_ids"]
        assert len(record["completion_logprobs"]) == len(record["completion_token_ids"])
        assert all(p <= 0 and math.isfinite(p) for p in record["completion_logprobs"])
    tree_path = tmp_path / "tree.json"
    tree_path.write_text(tree_of_answers(*answers).to_json(), encoding="utf-8")
    rows, stats = extract_pairs(load_tree(tree_path), scope="all")
    assert stats.pairs == 2
    assert rows[0]["meta"]["chosen_tokens"] == records[0]
    assert rows[0]["meta"]["rejected_tokens"] == records[1]
    assert "chosen_tokens" not in rows[1]["meta"]  # rule-made steps have no record

    path = write_pairs(rows, tmp_path / "pairs.jsonl")
    assert read_pairs(path) == rows
    dataset = load_dataset("json", data_files=str(path), split="train")
    assert dataset[0]["meta"]["chosen_tokens"] == records[0]
    assert dataset[0]["meta"]["rejected_tokens"]["completion_logprobs"] == pytest.approx(
        records[1]["completion_logprobs"])
    assert dataset[1]["meta"].get("chosen_tokens") is None  # missing (or null, by version)
    table = pyarrow.json.read_json(path)  # plain Arrow inference (datasets < 5) as well
    metas = table.column("meta").to_pylist()
    assert metas[0]["chosen_tokens"]["completion_token_ids"] == records[0]["completion_token_ids"]
    assert metas[1]["chosen_tokens"] is None


def test_trl_trains_on_a_file_with_token_records(tiny_hf, tiny_path, tmp_path):
    import torch
    from datasets import load_dataset
    from langchain_core.messages import HumanMessage
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    answers = [tiny_hf.invoke([HumanMessage("Page 2.")], seed=seed, temperature=1.0)
               for seed in (3, 4)]
    rows, _ = extract_pairs(tree_of_answers(*answers).to_graph(), scope="all")
    path = write_pairs(rows, tmp_path / "pairs.jsonl")
    dataset = load_dataset("json", data_files=str(path), split="train")
    config = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2,
                       report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True,
                       max_length=512)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32),
                         args=config, train_dataset=dataset,
                         processing_class=AutoTokenizer.from_pretrained(tiny_path))
    trainer.train()
    assert trainer.state.global_step == 1


def test_explored_think_nodes_keep_the_calls_token_records(tiny_path, tmp_path):
    from stepwise.agents.think.environment import ThinkEnvironment
    from stepwise.llm.hf import HFChatModel
    from stepwise.search.events import EventLog
    from stepwise.search.explorer import ExploreOptions, Explorer

    model = HFChatModel(model_path=str(tiny_path), max_tokens=6)
    options = ExploreOptions(simulations=3, seed=0)

    def explore(log_path):
        env = ThinkEnvironment("cancel-insured", model, max_turns=2)
        return Explorer(env, options, EventLog(log_path)).run()

    tree = explore(tmp_path / "events.jsonl")
    children = [tree.nodes[c] for c in tree.root.children]
    assert len(children) >= 2
    for node in children:
        record = node.call_tokens
        assert record and record["completion_token_ids"] and record["prompt_token_ids"]
    # act binds the world's tools, think:think only the think tool: different prompts
    assert children[0].call_tokens["prompt_token_ids"] != children[1].call_tokens["prompt_token_ids"]
    graph = tree.to_graph()
    assert graph.nodes[children[0].id]["call_tokens"] == children[0].call_tokens
    replayed = explore(tmp_path / "events.jsonl")  # rebuilt from the event log alone
    assert [replayed.nodes[c.id].call_tokens for c in children] == [c.call_tokens for c in children]


def test_a_longmt_trace_keeps_the_token_records_of_its_decision_and_translation_calls(
        tiny_hf):
    from stepwise.agents.longmt import LongMTAgent

    lines = ["Anna waited at the station.", "Anna took the train."]
    result = LongMTAgent(tiny_hf, policy="auto", page_sentences=1).translate(
        lines, src="en", tgt="en")
    first, second = result.steps
    assert {c["purpose"] for c in first["model_calls"]} == {"translate"}  # page 0: no decision
    assert {c["purpose"] for c in second["model_calls"]} == {"decision", "translate"}
    assert sum(c["purpose"] == "translate" for c in second["model_calls"]) == second["attempts"]
    for record in first["model_calls"] + second["model_calls"]:
        assert record["prompt_token_ids"] and record["completion_token_ids"]
        assert len(record["completion_logprobs"]) == len(record["completion_token_ids"])
    json.dumps(result.steps[1])  # the trace stays plain JSON


def test_a_model_without_token_records_leaves_the_trace_as_it_was():
    from stepwise.agents.longmt import LongMTAgent
    from stepwise.llm.uri import from_uri

    result = LongMTAgent(from_uri("sim:translator"), page_sentences=1).translate(
        ["Anna waited.", "Anna left."], src="en", tgt="en")
    assert all("model_calls" not in step for step in result.steps)
