"""Step-level preference pairs: which siblings pair up, and files TRL takes as they are."""

from __future__ import annotations

import json
import math

import pytest

from stepwise.search.pairs import (
    PairStats,
    check_prefix,
    extract_pairs,
    normalize_messages,
    read_pairs,
    to_stepwise,
    write_pairs,
)
from stepwise.search.tree import Tree, best_path, load_tree

TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_entities", "description": "Earlier translations of names.",
        "parameters": {"type": "object", "required": ["names"], "properties": {
            "names": {"type": "array", "items": {"type": "string"}}}}}},
    {"type": "function", "function": {
        "name": "view_pages", "description": "The most relevant earlier pages.",
        "parameters": {"type": "object", "required": ["query"], "properties": {
            "query": {"type": "string"}, "k": {"type": "integer", "default": 5}}}}},
    {"type": "function", "function": {
        "name": "view_summaries", "description": "Summaries of earlier pages.",
        "parameters": {"type": "object", "properties": {}}}},
]
SYSTEM = {"role": "system", "content": "You translate a long document from English to Chinese, "
                                       "one page at a time. Call memory tools when a page needs them."}


def call(name: str, arguments: dict, i: int = 0) -> dict:
    return {"id": f"call_{i}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}


def step(kind: str) -> list[dict]:
    """LongMT-like decision steps: which memory a page queries, or none."""
    if kind == "entities":
        return [{"role": "assistant", "content": None,
                 "tool_calls": [call("lookup_entities", {"names": ["Anna"]})]}]
    if kind == "entities+pages":
        return [{"role": "assistant", "content": "",
                 "tool_calls": [call("lookup_entities", {"names": ["Anna"]}),
                                call("view_pages", {"query": "Anna at the station", "k": 5}, 1)]}]
    if kind == "summaries":
        return [{"role": "assistant", "content": "",
                 "tool_calls": [call("view_summaries", {})]}]
    return [{"role": "assistant", "content": "This page needs no memory; translating now."}]


def prompt(page: int) -> list[dict]:
    messages = [SYSTEM, {"role": "user", "content": f"Page {page}: Anna waited at the station. "
                                                    "安娜在车站等候。"}]
    if page >= 2:  # a history that ends in a tool turn
        messages = [SYSTEM,
                    {"role": "user", "content": f"Page {page - 1}: Anna left."},
                    {"role": "assistant", "content": None, "name": "translator",
                     "tool_calls": [call("lookup_entities", {"names": ["Anna"]}, 7)]},
                    {"role": "tool", "tool_call_id": "call_7", "name": "lookup_entities",
                     "content": "Anna -> 安娜"},
                    {"role": "user", "content": f"Page {page}: Anna waited at the station."}]
    return messages


def child(tree: Tree, parent: int, kind: str, visits: int, wins: float):
    node = tree.add_child(parent, [] if kind == "none" else kind.split("+"), kind)
    node.visits, node.wins = visits, wins
    node.completion = step(kind)
    return node


@pytest.fixture()
def tree() -> Tree:
    """Root (page 1) -> E q.9, E+P q.5, none q.2; under E (page 2) -> S q.8, none q.3;
    under E+P -> two children as well (off the best path)."""
    t = Tree.new(task="doc-1", env="longmt", seed=7, tools=TOOLS, options={"q": "mean"})
    t.root.visits, t.root.wins = 10, 6.0
    t.root.prompt, t.root.optimal = prompt(1), ["lookup_entities"]
    best = child(t, 0, "entities", 4, 3.6)
    mid = child(t, 0, "entities+pages", 4, 2.0)
    child(t, 0, "none", 2, 0.4)
    best.prompt, mid.prompt = prompt(2), prompt(2)
    child(t, best.id, "summaries", 2, 1.6)
    child(t, best.id, "none", 2, 0.6)
    child(t, mid.id, "summaries", 2, 1.0)
    child(t, mid.id, "none", 1, 0.9)
    return t


# -- which pairs ---------------------------------------------------------------------------


def test_best_path_pairs_siblings_max_q_against_min_q(tree):
    graph = tree.to_graph()
    rows, stats = extract_pairs(graph)
    assert [(r["meta"]["parent_id"], r["meta"]["chosen_id"], r["meta"]["rejected_id"])
            for r in rows] == [(0, 1, 3), (1, 4, 5)]
    for row in rows:  # siblings only: both sides hang off the parent whose prompt is used
        meta = row["meta"]
        assert graph.nodes[meta["chosen_id"]]["parent"] == meta["parent_id"]
        assert graph.nodes[meta["rejected_id"]]["parent"] == meta["parent_id"]
        assert row["prompt"] == normalize_messages(graph.nodes[meta["parent_id"]]["prompt"])
    assert stats == PairStats(parents_seen=2, pairs=2)
    assert [r["meta"]["chosen_id"] for r in rows] == tree.best_path()[1:]


def test_all_scope_adds_parents_off_the_best_path(tree):
    rows, stats = extract_pairs(tree.to_graph(), scope="all")
    assert [(r["meta"]["parent_id"], r["meta"]["chosen_id"], r["meta"]["rejected_id"])
            for r in rows] == [(0, 1, 3), (1, 4, 5), (2, 7, 6)]  # node 7: q .9 beats node 6's .5
    assert stats.parents_seen == 3 and stats.pairs == 3
    with pytest.raises(ValueError, match="scope"):
        extract_pairs(tree.to_graph(), scope="layer")


def test_closest_negatives_pair_the_chosen_step_with_its_near_miss_too(tree):
    def triples(negatives: str) -> list[tuple[int, int, int]]:
        rows, _ = extract_pairs(tree.to_graph(), negatives=negatives)
        return [(r["meta"]["parent_id"], r["meta"]["chosen_id"], r["meta"]["rejected_id"])
                for r in rows]

    assert triples("worst") == [(0, 1, 3), (1, 4, 5)]
    assert triples("closest") == [(0, 1, 2), (1, 4, 5)]  # E+P (q .5) is the root's near miss
    assert triples("both") == [(0, 1, 2), (0, 1, 3), (1, 4, 5)]  # two children: one pair
    with pytest.raises(ValueError, match="negatives"):
        extract_pairs(tree.to_graph(), negatives="all")


def test_meta_fields(tree):
    row = extract_pairs(tree.to_graph())[0][0]
    assert set(row) == {"prompt", "chosen", "rejected", "tools", "meta"}
    meta = row["meta"]
    assert meta == {
        "task": "doc-1", "seed": 7, "depth": 0, "parent_id": 0, "chosen_id": 1,
        "rejected_id": 3, "q_chosen": pytest.approx(0.9), "q_rejected": pytest.approx(0.2),
        "delta_q": pytest.approx(0.7), "visits_chosen": 4, "visits_rejected": 2,
        "chosen_action": ["entities"], "rejected_action": [], "chosen_label": "entities",
        "rejected_label": "none", "optimal_action": ["lookup_entities"], "best_actions": None,
    }
    assert extract_pairs(tree.to_graph())[0][1]["meta"]["optimal_action"] is None
    assert json.loads(row["tools"]) == TOOLS


def test_min_visits_leaves_out_thin_children_and_counts_lonely_parents(tree):
    rows, stats = extract_pairs(tree.to_graph(), min_visits=3)
    # at the root node 3 (2 visits) drops out: E+P (q .5) is the rejected one now;
    # under node 1 both children have 2 visits: too few, and the path ends there
    assert [(r["meta"]["chosen_id"], r["meta"]["rejected_id"]) for r in rows] == [(1, 2)]
    assert stats == PairStats(parents_seen=2, pairs=1, too_few_children=1)
    rows, stats = extract_pairs(tree.to_graph(), min_visits=5)
    assert rows == [] and stats == PairStats(parents_seen=1, too_few_children=1)


def test_min_delta_q_threshold(tree):
    rows, stats = extract_pairs(tree.to_graph(), min_delta_q=0.6)
    assert [r["meta"]["parent_id"] for r in rows] == [0]  # ΔQ .7 passes, .5 does not
    assert stats.below_delta_q == 1 and stats.pairs == 1
    rows, stats = extract_pairs(tree.to_graph(), min_delta_q=0.7)  # exactly ΔQ: kept
    assert stats.pairs == 1


def test_no_pair_when_all_q_equal():
    t = Tree.new(task="t", seed=0, tools=[], options={"q": "mean"})
    t.root.prompt = prompt(1)
    for kind in ("entities", "summaries", "none"):
        child(t, 0, kind, 3, 1.5)
    rows, stats = extract_pairs(t.to_graph())
    assert rows == []
    assert stats == PairStats(parents_seen=1, no_preference=1)
    t.nodes[1].wins = 3.0
    rows, _ = extract_pairs(t.to_graph())
    assert rows[0]["tools"] is None  # no tools: null, not "[]" (templates render [] as tools)


def test_ties_are_broken_deterministically():
    t = Tree.new(task="t", seed=0, tools=TOOLS, options={"q": "mean"})
    t.root.prompt = prompt(1)
    a = child(t, 0, "entities", 2, 2.0)  # q 1, 2 visits
    b = child(t, 0, "summaries", 4, 4.0)  # q 1, 4 visits: chosen (more visits)
    c = child(t, 0, "entities+pages", 4, 4.0)  # q 1, 4 visits, later id
    d = child(t, 0, "none", 2, 0.0)  # q 0, 2 visits
    e = child(t, 0, "none", 2, 0.0)  # q 0, 2 visits, later id: rejected (higher id)
    f = child(t, 0, "none", 3, 0.0)  # q 0, more visits
    row = extract_pairs(t.to_graph())[0][0]
    assert (row["meta"]["chosen_id"], row["meta"]["rejected_id"]) == (b.id, e.id)
    assert b.id == t.best_path()[1]
    assert {a.id, c.id, d.id, f.id}.isdisjoint({row["meta"]["chosen_id"],
                                                row["meta"]["rejected_id"]})
    # shuffled insertion order in the graph changes nothing
    graph = t.to_graph()
    reversed_graph = graph.__class__(**graph.graph)
    reversed_graph.add_nodes_from(reversed(list(graph.nodes(data=True))))
    reversed_graph.add_edges_from(reversed(list(graph.edges)))
    assert extract_pairs(reversed_graph)[0] == extract_pairs(graph)[0]


def test_missing_prompt_or_completion_and_identical_steps_are_counted(tree):
    tree.root.prompt = None
    tree.nodes[5].completion = None
    rows, stats = extract_pairs(tree.to_graph(), scope="all")
    assert stats.no_prompt == 1 and stats.no_completion == 1
    tree.nodes[6].completion = step("none")  # same messages as its sibling node 7
    rows, stats = extract_pairs(tree.to_graph(), scope="all")
    assert rows == [] and stats.same_completion == 1
    assert stats.parents_seen == 3 and stats.as_dict()["pairs"] == 0


def test_round_trip_through_the_node_link_file(tree, tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(tree.to_json(), encoding="utf-8")
    graph = load_tree(path)
    for scope in ("best_path", "all"):
        loaded, stats = extract_pairs(graph, scope=scope)
        direct, direct_stats = extract_pairs(tree.to_graph(), scope=scope)
        assert stats == direct_stats and len(loaded) == len(direct) > 0
        for a, b in zip(loaded, direct, strict=True):
            # the tree file sorts keys, so only the order inside the tool schemas differs
            assert json.loads(a.pop("tools")) == json.loads(b.pop("tools")) == TOOLS
            assert a == b


# -- normalising messages ------------------------------------------------------------------


def test_messages_are_normalised_for_arrow_and_templates(tree):
    rows, _ = extract_pairs(tree.to_graph())
    chosen = rows[0]["chosen"][0]
    assert chosen["content"] == ""  # None on the node
    assert chosen["tool_calls"][0]["function"]["arguments"] == '{"names": ["Anna"]}'
    history = rows[1]["prompt"]
    assert "name" not in history[2] and "name" not in history[3]  # dropped keys
    assert history[3] == {"role": "tool", "content": "Anna -> 安娜", "tool_call_id": "call_7"}
    # arguments given as objects (LangChain-style calls too) become JSON strings, and back
    odd = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, "b"],
            "tool_calls": [{"name": "view_pages", "args": {"query": "q", "k": 5}, "id": None}]}]
    assert normalize_messages(odd) == [{"role": "assistant", "content": "ab", "tool_calls": [
        {"type": "function", "function": {"name": "view_pages", "arguments": '{"query": "q", "k": 5}'}}]}]
    as_dict = normalize_messages(step("entities"), arguments_as="dict")
    assert as_dict[0]["tool_calls"][0]["function"]["arguments"] == {"names": ["Anna"]}


def test_write_pairs_is_jsonl_with_unicode_kept(tree, tmp_path):
    rows, _ = extract_pairs(tree.to_graph(), scope="all")
    path = write_pairs(rows, tmp_path / "out" / "pairs.jsonl")
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == len(rows) == 3 and "安娜" in text
    assert list(json.loads(text.splitlines()[0])) == ["prompt", "chosen", "rejected", "tools", "meta"]
    assert read_pairs(path) == rows
    assert [p.name for p in path.parent.iterdir()] == ["pairs.jsonl"]  # no temporary left


# -- the contract: datasets and TRL take the file as it is ----------------------------------


@pytest.fixture()
def pairs_file(tree, tmp_path):
    rows, _ = extract_pairs(tree.to_graph(), scope="all")
    # chosen with tool calls and rejected as text, and the other way round
    assert any("tool_calls" in r["chosen"][0] and "tool_calls" not in r["rejected"][0] for r in rows)
    assert any("tool_calls" in r["rejected"][0] for r in rows)
    return write_pairs(rows, tmp_path / "pairs.jsonl"), rows


def test_load_dataset_reads_the_file_unchanged(pairs_file):
    from datasets import load_dataset

    path, rows = pairs_file
    dataset = load_dataset("json", data_files=str(path), split="train")
    assert dataset.num_rows == len(rows)
    for loaded, row in zip(dataset, rows, strict=True):
        assert json.loads(loaded["tools"]) == TOOLS  # no other tool's parameters filled in
        for key in ("prompt", "chosen", "rejected"):
            # what Arrow adds to a message is at most missing keys as None
            for got, want in zip(loaded[key], row[key], strict=True):
                assert {k: v for k, v in got.items() if v is not None} == want
        assert loaded["meta"]["q_chosen"] == row["meta"]["q_chosen"]


def test_plain_arrow_inference_reads_it_too(pairs_file):
    """datasets < 5 infers one Arrow schema for the file: tools as a list would merge every
    tool's parameters into one struct, null-filled; as one string they stay exact."""
    import pyarrow as pa
    import pyarrow.json

    path, rows = pairs_file
    table = pyarrow.json.read_json(path)
    assert table.schema.field("tools").type == pa.string()
    assert [json.loads(t) for t in table.column("tools").to_pylist()] == [TOOLS] * len(rows)


def test_trl_renders_the_loaded_rows_with_exact_tool_schemas(pairs_file, tiny_path):
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template

    path, _ = pairs_file
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    dataset = load_dataset("json", data_files=str(path), split="train")
    row = dataset[0]
    tools = json.loads(row["tools"])
    text = apply_chat_template({k: row[k] for k in ("prompt", "chosen", "rejected")},
                               tokenizer, tools=tools)
    for tool in TOOLS:
        assert json.dumps(tool, ensure_ascii=False) in text["prompt"]
    assert "null" not in text["prompt"]
    assert text["prompt"].endswith("<|im_start|>assistant\n")
    assert "<tool_call>" in text["chosen"] and "lookup_entities" in text["chosen"]
    assert text["rejected"].startswith("This page needs no memory; translating now.")


def test_tiny_template_renders_string_arguments_as_the_object(tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    as_json = prompt(1) + step("entities")
    as_dict = prompt(1) + normalize_messages(step("entities"), arguments_as="dict")
    assert (tokenizer.apply_chat_template(as_json, tools=TOOLS, tokenize=False)
            == tokenizer.apply_chat_template(as_dict, tools=TOOLS, tokenize=False))


def test_dpo_trainer_trains_two_steps_with_sft_regularisation(pairs_file, tiny_path, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    path, _ = pairs_file
    dataset = load_dataset("json", data_files=str(path), split="train")
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    before = [p.detach().clone() for p in model.parameters()]
    config = DPOConfig(
        output_dir=str(tmp_path / "dpo"), max_steps=2, per_device_train_batch_size=2,
        report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
        learning_rate=1e-3, max_length=1024, disable_tqdm=True, seed=0,
        loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5],
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 2
    first = trainer.train_dataset[0]  # the completion starts right after the prompt
    assert tokenizer.decode(first["prompt_ids"]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(first["chosen_ids"]).startswith("<tool_call>")
    assert tokenizer.decode(first["rejected_ids"]).startswith("This page needs no memory")
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_check_prefix_keeps_good_rows_and_drops_broken_ones(pairs_file, tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    _, rows = pairs_file
    kept, dropped = check_prefix(rows, tokenizer)
    assert kept == rows and dropped == 0
    not_assistant = {**rows[0], "chosen": [{"role": "user", "content": "translate it"}]}
    empty_step = {**rows[1], "rejected": []}
    kept, dropped = check_prefix([not_assistant, rows[1], empty_step], tokenizer)
    assert kept == [rows[1]] and dropped == 2
    as_list = {**rows[1], "tools": TOOLS}  # tools as objects work as well
    assert check_prefix([as_list], tokenizer) == ([as_list], 0)
    stats = PairStats(pairs=3)
    stats.dropped_by_tokenizer = dropped
    assert stats.as_dict()["dropped_by_tokenizer"] == 2


# -- stepwise supervision ------------------------------------------------------------------


def test_stepwise_rows_label_chosen_true_and_rejected_false(tree, tmp_path, tiny_path):
    from datasets import load_dataset
    from transformers import AutoTokenizer

    rows, stats = extract_pairs(tree.to_graph(), format="stepwise")
    assert stats.pairs == 2 and len(rows) == 4
    assert [(r["labels"], r["meta"]["side"]) for r in rows[:2]] == [([True], "chosen"),
                                                                   ([False], "rejected")]
    assert rows[0]["prompt"] == rows[1]["prompt"] and rows[0]["prompt"].endswith("assistant: ")
    assert json.loads(rows[0]["completions"][0]) == {"name": "lookup_entities",
                                                     "arguments": {"names": ["Anna"]}}
    assert rows[1]["completions"] == ["This page needs no memory; translating now."]
    path = write_pairs(rows, tmp_path / "steps.jsonl")
    dataset = load_dataset("json", data_files=str(path), split="train")
    assert dataset.features["labels"].feature.dtype == "bool"
    assert dataset[1]["completions"] == rows[1]["completions"]

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    pairs, _ = extract_pairs(tree.to_graph())
    rendered = to_stepwise(pairs, tokenizer)
    assert rendered[0]["prompt"].endswith("<|im_start|>assistant\n")
    assert rendered[1]["completions"][0].startswith("This page needs no memory")
    assert "<tool_call>" in rendered[0]["completions"][0]


def test_token_records_of_model_made_steps_go_into_meta_by_side(tree, tmp_path):
    record = {"prompt_token_ids": [1, 2, 3], "completion_token_ids": [4, 5],
              "completion_logprobs": [-0.5, -1.25], "model": "tiny"}
    tree.nodes[1].call_tokens = record  # chosen at the root; its rejected sibling has none
    path = tmp_path / "tree.json"
    path.write_text(tree.to_json(), encoding="utf-8")
    rows, _ = extract_pairs(load_tree(path))
    assert rows[0]["meta"]["chosen_tokens"] == record
    assert "rejected_tokens" not in rows[0]["meta"] and "chosen_tokens" not in rows[1]["meta"]


def test_the_tree_and_the_pairs_follow_one_best_path(tree):
    """A step-by-step search commits its decisions (the spine): the tree's own best path and
    the one pairs are taken on must both be that path, not the max-Q walk."""
    assert tree.best_path() == best_path(tree.to_graph()) == [0, 1, 4]
    tree.attrs["spine"] = [0, 2]  # committed the second child, whatever Q says later
    assert tree.best_path() == best_path(tree.to_graph()) == [0, 2]
    rows, _ = extract_pairs(tree.to_graph())
    assert [r["meta"]["parent_id"] for r in rows] == [0, 2]  # pairs at the committed parents
