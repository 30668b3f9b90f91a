"""The MCTS explorer: UCB1 search, determinism, resume from the event log, pairs on the
synthetic translation world (a simulation), and the request cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import explore_tasks
from stepwise.search.tree import load_tree


class ChainEnv:
    """A toy environment: three steps, three actions each; the score counts right choices."""

    task_id = "chain"
    best = (2, 0, 1)

    def initial_state(self):
        return ()

    def actions(self, state):
        return [0, 1, 2]

    def step(self, state, action):
        return (*state, action)

    def is_terminal(self, state):
        return len(state) == len(self.best)

    def score(self, state):
        return 1.0 + sum(a == b for a, b in zip(state, self.best, strict=True))

    def step_scores(self, state):
        return [1.0 + (a == b) for a, b in zip(state, self.best, strict=True)]

    def baseline_score(self):
        return 1.0

    def baseline_step_scores(self):
        return [1.0] * len(self.best)

    def rollout_action(self, state, rng):
        return rng.randrange(3)

    def decision_prompt(self, state):
        return [{"role": "user", "content": f"choices so far: {list(state)}"}]

    def decision_completion(self, state, action):
        return [{"role": "assistant", "content": f"choose {action}"}]

    def tool_schemas(self):
        return []

    def optimal_action(self, state):
        return self.best[len(state)]

    def action_label(self, action):
        return str(action)


def run_chain(tmp_path: Path | None = None, **options) -> Explorer:
    log = EventLog(tmp_path / "events.jsonl" if tmp_path else None)
    explorer = Explorer(ChainEnv(), ExploreOptions(**options), log, env_name="chain")
    explorer.run()
    return explorer


def test_search_finds_the_best_chain_and_counts_visits():
    explorer = run_chain(simulations=120, seed=1)
    tree = explorer.tree
    assert tree.root.visits == 120
    assert [tree.nodes[n].action for n in tree.best_path()[1:]] == [2, 0, 1]
    for node in tree.nodes.values():  # every visit below a node went through it
        if node.children:
            assert node.visits >= sum(tree.nodes[c].visits for c in node.children)
    first = [tree.nodes[c] for c in tree.root.children]
    assert max(first, key=lambda n: n.visits).action == 2  # UCB1 exploits the best child


def test_same_seed_same_tree_and_other_seeds_differ():
    one, two = run_chain(simulations=40, seed=7), run_chain(simulations=40, seed=7)
    assert one.tree.to_json() == two.tree.to_json()
    assert one.tree.to_json() != run_chain(simulations=40, seed=8).tree.to_json()


def test_width_early_stop_and_max_q():
    narrow = run_chain(simulations=30, width=2, seed=0).tree
    assert all(len(n.children) in (0, 2) for n in narrow.nodes.values())
    stopped = run_chain(simulations=500, early_stop=15, seed=0).tree
    assert stopped.root.visits < 500
    best = run_chain(simulations=60, q="max", seed=0).tree
    assert best.q(best.best_path()[1]) == pytest.approx(4.0)  # the best reward seen


def test_a_resumed_search_equals_an_uninterrupted_one(tmp_path):
    straight = run_chain(simulations=50, seed=3).tree.to_json()
    (tmp_path / "a").mkdir()
    run_chain(tmp_path / "a", simulations=20, seed=3)
    log = tmp_path / "a" / "events.jsonl"
    with log.open("a") as handle:
        handle.write('{"i": 20, "torn')  # a kill in the middle of a write
    resumed = run_chain(tmp_path / "a", simulations=50, seed=3).tree.to_json()
    assert resumed.replace('"simulations": 50', "") == straight.replace('"simulations": 50', "")
    assert len(log.read_text().splitlines()) == 50


def test_per_step_rewards_judge_each_step_by_its_own_score():
    tree = run_chain(simulations=80, reward="page", seed=2).tree
    deepest = [n for n in tree.nodes.values() if n.depth == 3 and n.visits]
    assert all(n.step_score == (2.0 if n.action == 1 else 1.0) for n in deepest)


def explore_world(tmp_path: Path, simulations: int, docs: int = 3, seed: int = 0,
                  reward: str = "document"):
    from stepwise.agents.longmt.environment import LongMTEnvironment
    from stepwise.documents.pages import paginate
    from stepwise.llm import from_uri
    from stepwise.llm.cache import CachingChatModel
    from stepwise.sim.translation import WorldOracle, make_documents

    model = CachingChatModel(model=from_uri("sim:translator"))
    world = {d.id: d for d in make_documents(docs, seed)}

    def make_env(task_id):
        doc = world[task_id]
        return LongMTEnvironment(task_id, paginate(doc.src, "qsy", page_sentences=5), doc.ref,
                                 model, src="qsy", tgt="en", oracle=WorldOracle(doc.ref))

    report = explore_tasks(list(world), make_env,
                           ExploreOptions(simulations=simulations, reward=reward),
                           tmp_path, env_name="longmt", model_counts=lambda: model.counts,
                           simulated=True)
    return report, [json.loads(line) for line in (tmp_path / "pairs.jsonl").open()]


@pytest.mark.slow
def test_chosen_steps_match_the_worlds_best_modules_far_more_often(tmp_path):
    """Measured (simulated, 3 documents, seed 0, 5-sentence pages), share of pairs whose
    chosen / rejected step is among the world's exact best module sets for the page (all
    eight tried, ties kept):

    - document rewards (the seed), 48 simulations: chosen 6/6, rejected 1/6;
    - per-page rewards, 48 and 96 simulations: chosen 5/5, rejected 0/5.
    """
    report, rows = explore_world(tmp_path / "document", 48)
    rate = report.optimal_rates
    assert rows and all(r["meta"]["optimal_action"] is not None for r in rows)
    assert all(r["meta"]["optimal_action"] in r["meta"]["best_actions"] for r in rows)
    assert rate["chosen_is_best"] >= rate["rejected_is_best"] + 0.3
    assert report.model_calls["saved"] > report.model_calls["calls"]  # the cache works
    page = {}
    for simulations in (48, 96):
        page[simulations] = explore_world(tmp_path / f"page{simulations}", simulations,
                                          reward="page")[0].optimal_rates
        assert page[simulations]["chosen_is_best"] >= 0.7
        assert page[simulations]["rejected_is_best"] <= 0.1
    assert page[96]["chosen_is_best"] >= page[48]["chosen_is_best"]  # more search, no worse
    tree = load_tree(tmp_path / "page96" / "trees" / "synth-000.json")
    assert tree.graph["simulated"] and tree.nodes[0]["visits"] == 96


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_pairs(tmp_path):
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(2, 0), tmp_path / "world")
    command = [sys.executable, "-m", "stepwise", "explore", str(dataset), "-m", "sim:translator",
               "--page-sentences", "5", "--simulations", "40", "--seed", "5"]
    straight = subprocess.run([*command, "--out", str(tmp_path / "a")], check=False, capture_output=True,
                              text=True, timeout=200)
    assert straight.returncode == 0, straight.stderr
    killed = subprocess.Popen([*command, "--out", str(tmp_path / "b")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    events = tmp_path / "b" / "events" / "synth-000.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
            not events.is_file() or len(events.read_bytes().splitlines()) < 10):
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "b" / "pairs.jsonl").exists()
    again = subprocess.run([*command, "--out", str(tmp_path / "b")], check=False, capture_output=True,
                           text=True, timeout=200)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run([*command, "--out", str(tmp_path / "b"), "--resume"],
                             check=False, capture_output=True, text=True, timeout=200)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "a" / "pairs.jsonl").read_bytes() == (tmp_path / "b" / "pairs.jsonl").read_bytes()
    for tree in (tmp_path / "a" / "trees").iterdir():
        assert tree.read_bytes() == (tmp_path / "b" / "trees" / tree.name).read_bytes()


def test_explored_pairs_load_check_and_train_two_dpo_steps(tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from stepwise.llm.tiny import tiny_model_path
    from stepwise.search.pairs import check_prefix

    _, rows = explore_world(tmp_path / "run", 24, docs=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(0))
    kept, dropped = check_prefix(rows, tokenizer)
    assert dropped == 0 and len(kept) == len(rows) >= 2
    dataset = load_dataset("json", data_files=str(tmp_path / "run" / "pairs.jsonl"),
                           split="train")
    assert dataset.column_names[:4] == ["prompt", "chosen", "rejected", "tools"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path(0), dtype=torch.float32)
    config = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=2,
                       per_device_train_batch_size=2, report_to=[], use_cpu=True,
                       logging_steps=1, save_strategy="no", max_length=2048,
                       disable_tqdm=True, seed=0, loss_type=["sigmoid", "sft"],
                       loss_weights=[1.0, 0.5])
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 2


def test_explore_cli_checks_prefixes_and_writes_stepwise_rows(tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.llm.tiny import tiny_model_path
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    base = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
            "--simulations", "16"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a"), "--tokenizer",
                                      str(tiny_model_path(0))])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["pair_stats"]["dropped_by_tokenizer"] == 0 and summary["pairs"] >= 1
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b"), "--stepwise-format"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "b" / "pairs.jsonl").open()]
    assert {tuple(r["labels"]) for r in rows} == {(True,), (False,)}
    for bad, message in ((["--rollout", "greedy"],
                          ("Invalid value for '--rollout': 'greedy' is not one of 'random', "
                           "'auto'.\n")),
                         (["--env", "chess"],
                          ("Invalid value for '--env': 'chess' is not one of 'longmt', "
                           "'think'.\n"))):
        result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "c"), *bad])
        assert result.exit_code == 2 and message in result.stderr


def test_parallel_simulations_are_deterministic_and_resume_exactly(tmp_path):
    one = run_chain(simulations=48, parallel=4, seed=4).tree
    assert one.root.visits == 48
    assert one.to_json() == run_chain(simulations=48, parallel=4, seed=4).tree.to_json()
    assert [one.nodes[n].action for n in one.best_path()[1:]] == [2, 0, 1]
    (tmp_path / "p").mkdir()
    run_chain(tmp_path / "p", simulations=20, parallel=4, seed=4)
    resumed = run_chain(tmp_path / "p", simulations=48, parallel=4, seed=4).tree
    assert resumed.to_json() == one.to_json()
    lines = [json.loads(line) for line in (tmp_path / "p" / "events.jsonl").open()]
    assert [line["i"] for line in lines] == list(range(48))  # one simulation a line, in order
    assert all(len(line["batch"]) == 1 for line in lines)
    first = [line["batch"][0] for line in lines[:7]]
    # the first expands the root and plays its first child; while it is in flight the next
    # two play the other children (virtual loss); every leaf is then in flight, so the
    # fourth expands the first child without waiting for its rollout and plays its first
    # child, the next two its others; the seventh, once the first is back, expands node 2
    assert [item["simulated"] for item in first] == [1, 2, 3, 4, 5, 6, 7]
    assert [(item["expanded"] or {}).get("parent") for item in first] == \
        [0, None, None, 1, None, None, 2]
    assert [item["score"] for item in first[:4]] == [2.0, 1.0, 3.0, 2.0]


class ForcedFirstChain(ChainEnv):
    """The chain with one action at the first step (a first page with no memory to use)."""

    best = (0, 2, 1)

    def actions(self, state):
        return [0] if not state else [0, 1, 2]

    def rollout_action(self, state, rng):
        return rng.choice(self.actions(state))


@pytest.mark.parametrize("parallel", [1, 2, 4])
def test_a_small_budget_reaches_the_decision_after_a_forced_step(parallel):
    # every leaf is in flight at once: the forced step is expanded before its rollout is
    # back, and the simulations try the decision's actions instead of replaying the step
    explorer = Explorer(ForcedFirstChain(), ExploreOptions(simulations=4, parallel=parallel))
    tree = explorer.run()
    forced = tree.nodes[tree.root.children[0]]
    assert [tree.nodes[c].visits for c in forced.children] == [1, 1, 1]


def test_explore_cli_on_the_think_environment(tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app

    result = CliRunner().invoke(app, [
        "explore", "airline", "--env", "think", "-m", "sim:airline-oracle", "--think-tools",
        "think,verify", "--simulations", "8", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["tasks"] == 18 and summary["pairs"] >= 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "pairs.jsonl").open()]
    assert {r["meta"]["chosen_action"] for r in rows} <= {"act", "think:think", "think:verify"}
    bad = CliRunner().invoke(app, ["explore", "mars", "--env", "think", "-m", "sim:echo",
                                   "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "policy world" in bad.stderr
