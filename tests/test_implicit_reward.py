"""Ranking by DPO's implicit reward: the trained policy's log-likelihood less its reference's."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.longmt.optima import SETS
from stepwise.cli import app
from stepwise.errors import StepwiseError
from stepwise.llm.implicit_reward import ImplicitReward, trained_from
from stepwise.testing.responding import RespondingChatModel
from tests.test_longmt_agent import LINES, echo_translator
from tests.test_rank_decisions import FixedScores

from .conftest import short_dataset

# The policy alone likes "none" best (index 0); against its reference it gained most on
# lookup_entities (index 3): -2 - (-9) = 7 beats every other difference.
POLICY = [-1.0, -5.0, -6.0, -2.0, -8.0, -8.0, -9.0, -9.0]
REFERENCE = [-1.5, -5.0, -6.0, -9.0, -8.0, -8.0, -9.0, -9.0]


def fixed(scores):
    return FixedScores(respond=echo_translator(), scores=scores)


def translated(decider, decide):
    translator = RespondingChatModel(respond=echo_translator())
    return LongMTAgent(translator, policy="auto", policy_model=decider, page_sentences=2,
                       decide=decide).translate(LINES, src="en", tgt="de")


def test_reward_ranks_by_what_training_moved_not_by_the_policys_own_likelihood():
    reward = ImplicitReward(fixed(POLICY), fixed(REFERENCE))
    assert reward.score_completions([], [[]] * 8) == [a - b for a, b in
                                                      zip(POLICY, REFERENCE, strict=True)]
    by_reward = translated(reward, "reward")
    by_likelihood = translated(fixed(POLICY), "rank")
    for step in by_reward.steps[1:]:
        assert step["decided_by"] == "reward" and not step["rank_tie"]
        assert [m["tool"] for m in step["modules"]] == list(SETS[3]) == ["lookup_entities"]
    assert all(step["modules"] == [] for step in by_likelihood.steps[1:])
    totals = by_reward.totals()
    assert totals["rank_decisions"] == len(by_reward.steps) - 1 and totals["rank_ties"] == 0


def test_an_untrained_policy_scores_zero_everywhere_a_tie_broken_to_no_modules():
    same = fixed(POLICY)
    result = translated(ImplicitReward(same, same), "reward")
    assert all(step["rank_tie"] and step["modules"] == [] for step in result.steps[1:])


def test_reward_needs_the_policy_and_its_reference():
    with pytest.raises(StepwiseError, match="must be an ImplicitReward"):
        translated(fixed(POLICY), "reward")


def test_the_reference_is_the_model_a_training_run_started_from(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({"model": "hf:smollm2", "steps": 3}))
    assert trained_from(f"hf:{tmp_path}") == "hf:smollm2"
    with pytest.raises(StepwiseError, match="trained by stepwise train dpo"):
        trained_from(f"hf:{tmp_path / 'elsewhere'}")
    with pytest.raises(StepwiseError, match="trained by stepwise train dpo"):
        trained_from("tiny")
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(StepwiseError, match="no reference model recorded"):
        trained_from(f"hf:{tmp_path}")


def test_translate_ranks_a_trained_policy_against_the_model_it_was_trained_from(tmp_path):
    """The command line path: the reference comes from the policy's train.json. A policy
    with its reference's very weights gains nothing anywhere: every page is a tie."""
    from stepwise.llm.tiny import tiny_model_path

    policy = tmp_path / "policy"
    shutil.copytree(tiny_model_path(0), policy)
    (policy / "train.json").write_text(json.dumps({"model": "tiny"}))
    dataset = short_dataset(tmp_path / "synth", lines=6)
    done = CliRunner().invoke(app, ["translate", str(dataset), "-m", "sim:translator",
                                    "--page-sentences", "2", "--policy", "auto",
                                    "--policy-model", f"hf:{policy}", "--decide", "reward",
                                    "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    traces = list((tmp_path / "out").glob("*(reward)/*.trace.jsonl"))
    assert len(traces) == 1
    steps = [json.loads(line) for line in traces[0].read_text().splitlines()]
    ranked = [s for s in steps if s.get("decided_by") == "reward"]
    assert len(ranked) == len(steps) - 1 >= 2  # every page after the first
    assert all(s["rank_tie"] and s["modules"] == [] for s in ranked)
    refused = CliRunner().invoke(app, ["translate", str(dataset), "-m", "sim:translator",
                                       "--policy", "auto", "--policy-model", "tiny",
                                       "--decide", "reward", "--out", str(tmp_path / "o2")])
    assert refused.exit_code != 0 and "trained by stepwise train dpo" in refused.stderr
