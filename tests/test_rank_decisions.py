"""LongMT decisions by ranking the allowed module sets, and generate mode's fallbacks.

Ranking scores each module set's exported step (the rule turn a DPO pair holds) by its
summed log-likelihood under the policy model after the decision prompt; the scores must be
those of the rows training sees, computed in one batched pass without changing them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from pydantic import Field, ValidationError
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.longmt.optima import SETS
from stepwise.agents.longmt.page_steps import NOT_A_DECISION, PageSteps
from stepwise.agents.longmt.policies import Policy
from stepwise.agents.longmt.prompts import NO_MODULES_REPLY, QUERY_HEAD
from stepwise.cli import app
from stepwise.documents import paginate
from stepwise.errors import StepwiseError
from stepwise.llm.messages import tool_schemas, training_dicts
from stepwise.llm.ranking import best_index, completion_rows, sequence_logprobs
from stepwise.memory.translation import PageRecord, TranslationMemory
from stepwise.search.pair_templates import rendered_ids
from stepwise.testing.responding import RespondingChatModel
from stepwise.tools.longmt.modules import memory_tools
from tests.test_longmt_agent import LINES, echo_translator, last_prompt


@pytest.fixture(scope="module")
def tiny():
    from stepwise.llm import from_uri

    model = from_uri("tiny")
    model._ensure_loaded()
    return model


def page_one(translator=None):
    """PageSteps over LINES, and the state at page 1 (page 0 translated)."""
    document = paginate(LINES, "en", page_sentences=2)
    steps = PageSteps(model=translator or RespondingChatModel(respond=echo_translator()),
                      document=document, src="en", tgt="de", policy=Policy.parse("auto"))
    memory = TranslationMemory.empty().with_page(PageRecord(
        number=0, source=tuple(document.pages[0].lines),
        translation=tuple(f"T:{line}" for line in document.pages[0].lines)))
    return steps, {"page": 1, "memory": memory, "steps": []}


def exported(steps: PageSteps, state: dict) -> tuple[list[dict], list[list[dict]], list[dict]]:
    """The decision prompt, every set's step and the tool schemas, as pairs export them."""
    view = steps.view(state)
    prompt = training_dicts(steps.decision_messages(state["page"]))
    completions = [training_dicts([steps.rule_turn(state["page"], list(s), view)]) for s in SETS]
    return prompt, completions, tool_schemas(list(memory_tools(view).values()))


def test_ranking_gives_eight_finite_scores_equal_to_one_sequence_at_a_time(tiny):
    import torch

    prompt, completions, tools = exported(*page_one())
    scores = tiny.score_completions(prompt, completions, tools)
    assert len(scores) == 8 and all(math.isfinite(s) and s < 0 for s in scores)
    assert len(set(scores)) > 1  # the steps differ, so do their likelihoods
    rows = completion_rows(tiny.tokenizer, prompt, completions, tools)
    for score, (ids, cut) in zip(scores, rows, strict=True):
        assert sequence_logprobs(tiny.hf_model, [(ids, cut)], 0)[0] == pytest.approx(score,
                                                                                     abs=1e-4)
        with torch.inference_mode():  # the plain computation: every position's logits
            logits = tiny.hf_model(input_ids=torch.tensor([ids])).logits[0].float()
        plain = sum(logits[p - 1].log_softmax(-1)[ids[p]].item() for p in range(cut, len(ids)))
        assert plain == pytest.approx(score, abs=1e-4)


def test_ranked_rows_are_the_rows_dpo_trains_on(tiny):
    prompt, completions, tools = exported(*page_one())
    rows = completion_rows(tiny.tokenizer, prompt, completions, tools)
    for chosen, rejected in ((0, 3), (7, 1)):
        pair = {"prompt": prompt, "chosen": completions[chosen], "rejected": completions[rejected],
                "tools": json.dumps(tools)}
        ids = rendered_ids(pair, tiny.tokenizer)
        assert ids["chosen"] == rows[chosen][0][rows[chosen][1]:]
        assert ids["rejected"] == rows[rejected][0][rows[rejected][1]:]


def test_rank_decides_by_the_best_score_and_traces_it(tiny):
    translator = RespondingChatModel(respond=echo_translator())
    result = LongMTAgent(translator, policy="auto", policy_model=tiny, page_sentences=2,
                         decide="rank").translate(LINES, src="en", tgt="de")
    ranked = result.steps[1:]
    assert result.steps[0]["decided_by"] == "first page" and ranked
    for step in ranked:
        assert step["decided_by"] == "rank"
        scores = list(step["rank_scores"].values())
        assert len(scores) == 8 and all(math.isfinite(s) for s in scores)
        best = SETS[best_index(scores)[0]]
        assert [m["tool"] for m in step["modules"]] == list(best)
        assert not step["rank_tie"]
    totals = result.totals()
    assert totals["rank_decisions"] == len(ranked) and totals["rank_ties"] == 0
    assert totals["fallbacks"] == 0


class FixedScores(RespondingChatModel):
    """A deciding model whose rank scores are given (to test ties and their tie-break)."""

    scores: list[float]

    def score_completions(self, prompt, completions, tools=None) -> list[float]:
        assert len(completions) == len(self.scores)
        return list(self.scores)


def test_all_equal_scores_are_a_counted_tie_broken_to_the_cheapest_set():
    translator = RespondingChatModel(respond=echo_translator())
    decider = FixedScores(respond=echo_translator(), scores=[-3.0] * 8)
    result = LongMTAgent(translator, policy="auto", policy_model=decider, page_sentences=2,
                         decide="rank").translate(LINES, src="en", tgt="de")
    for step in result.steps[1:]:
        assert step["decided_by"] == "rank" and step["rank_tie"] and step["modules"] == []
    assert result.totals()["rank_ties"] == len(result.steps) - 1


def test_equal_best_scores_take_the_first_in_sets_order_without_a_tie():
    scores = [-9.0, -9.0, -1.0, -5.0, -1.0, -9.0, -9.0, -9.0]  # view_pages = summaries+pages
    assert best_index(scores) == (2, False)
    translator = RespondingChatModel(respond=echo_translator())
    decider = FixedScores(respond=echo_translator(), scores=scores)
    result = LongMTAgent(translator, policy="auto", policy_model=decider, page_sentences=2,
                         decide="rank").translate(LINES, src="en", tgt="de")
    assert [[m["tool"] for m in s["modules"]] for s in result.steps[1:]] == [
        list(SETS[2])] * (len(result.steps) - 1)
    assert result.totals()["rank_ties"] == 0


def test_rank_needs_a_model_with_log_likelihoods():
    translator = RespondingChatModel(respond=echo_translator())
    agent = LongMTAgent(translator, policy="auto", page_sentences=2, decide="rank")
    with pytest.raises(StepwiseError, match="rank decisions need an hf: or tiny"):
        agent.translate(LINES, src="en", tgt="de")
    with pytest.raises(StepwiseError, match="decide must be one of"):
        LongMTAgent(translator, decide="vote")


def test_generate_mode_prose_other_than_the_no_modules_reply_is_a_counted_fallback():
    def decider(messages, tools):
        prompt = last_prompt(messages)
        assert prompt.startswith(QUERY_HEAD) and f"reply exactly: {NO_MODULES_REPLY}" in prompt
        return NO_MODULES_REPLY if "bridge was closed" in prompt else "Nothing to add here."

    translator = RespondingChatModel(respond=echo_translator())
    result = LongMTAgent(translator, policy="auto", page_sentences=1, fallback="entities",
                         policy_model=RespondingChatModel(respond=decider)).translate(
        LINES, src="en", tgt="de")
    replied = [s for s in result.steps if "bridge was closed" in " ".join(s["source"])]
    others = [s for s in result.steps[1:] if s not in replied]
    assert len(replied) == 1 and len(others) >= 3
    assert replied[0]["decided_by"] == "model" and replied[0]["modules"] == []
    for step in others:
        assert step["decided_by"] == "fallback"
        assert step["fallback_reason"] == NOT_A_DECISION
        assert [m["tool"] for m in step["modules"]] == ["lookup_entities"]
    assert result.totals()["fallbacks"] == len(others)


def test_a_rule_turn_that_calls_nothing_is_also_a_no_modules_reply():
    from stepwise.agents.longmt.page_steps import NO_MODULES, unusable_decision

    assert unusable_decision([AIMessage(NO_MODULES)]) is None
    assert unusable_decision([AIMessage(" No modules. ")]) is None
    assert unusable_decision([AIMessage("no modules needed, I think")]) == NOT_A_DECISION


def test_translate_refuses_rank_with_a_model_that_cannot_rank(tmp_path):
    doc = tmp_path / "doc.en"
    doc.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["translate", str(doc), "--src", "en", "--tgt", "de",
                                      "-m", "sim:translator", "--policy", "auto",
                                      "--decide", "rank", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "rank decisions need an hf: or tiny" in result.stderr
    result = CliRunner().invoke(app, ["translate", str(doc), "--src", "en", "--tgt", "de",
                                      "-m", "sim:translator", "--decide", "vote",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and ("Invalid value for '--decide': 'vote' is not one of "
                                      "'generate', 'rank', 'reward'.\n") in result.stderr


@pytest.mark.real_model
@pytest.mark.timeout(1200)  # a few minutes on two CPU cores: every page ranks eight steps
def test_smollm2_ranks_every_page_of_a_synthetic_document(smollm2_path, tmp_path):
    stepwise = [sys.executable, "-m", "stepwise"]
    made = subprocess.run([*stepwise, "sim", "make", "--world", "translation", "--docs", "1",
                           "--seed", "3", "--out", str(tmp_path / "synth")],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    run = subprocess.run([*stepwise, "translate", str(tmp_path / "synth" / "dataset.jsonl"),
                          "-m", "sim:translator", "--policy", "auto", "--policy-model",
                          f"hf:{smollm2_path}", "--decide", "rank", "--page-sentences", "10",
                          "--out", str(tmp_path / "out"), "--json"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    traces = list(Path(tmp_path / "out").glob("*/*.trace.jsonl"))
    assert len(traces) == 1 and traces[0].parent.name == "auto@policy-model(rank)"
    steps = [json.loads(line) for line in traces[0].read_text(encoding="utf-8").splitlines()]
    decided = [s for s in steps if s["page"] > 0]
    assert decided and all(s["decided_by"] == "rank" for s in decided)
    assert all(len(s["rank_scores"]) == 8 and all(math.isfinite(v) for v in
                                                 s["rank_scores"].values()) for s in decided)


def test_explore_and_loop_settings_carry_the_decide_mode(tmp_path):
    from stepwise.agents.environments import EnvSpec
    from stepwise.train.loop import LoopSettings

    made = CliRunner().invoke(app, ["sim", "make", "--world", "translation", "--docs", "1",
                                    "--seed", "3", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.stderr
    spec = EnvSpec(env="longmt", dataset=str(tmp_path / "dataset.jsonl"), model="sim:translator",
                   rollout="auto", decide="rank")
    make_env, _ = spec.factory()
    assert make_env(spec.task_ids()[0]).steps.decide == "rank"
    with pytest.raises(ValidationError, match="decide"):  # a Literal: refused when built
        EnvSpec(env="longmt", dataset="x", model="sim:translator", decide="vote")
    assert LoopSettings(dataset="x").decide == "generate"


def test_steps_are_batched_with_steps_of_similar_length():
    from stepwise.llm.ranking import length_groups

    groups = length_groups([11, 27, 502, 25, 528, 51, 526, 552])  # view_pages carries the page
    assert groups == [[0, 3, 1, 5], [2, 6, 4, 7]]
    assert sorted(i for group in length_groups([5, 900, 40, 300]) for i in group) == [0, 1, 2, 3]


class CountedScores(FixedScores):
    """Fixed rank scores that count how often they were asked for."""

    asked: list[int] = Field(default_factory=list)

    def score_completions(self, prompt, completions, tools=None) -> list[float]:
        self.asked.append(len(completions))
        return super().score_completions(prompt, completions, tools)


def test_the_request_cache_scores_a_repeated_rank_decision_once():
    from stepwise.llm.cache import CachingChatModel
    from stepwise.llm.ranking import ranker

    inner = CountedScores(respond=echo_translator(), scores=[-2.0, -1.0] + [-3.0] * 6)
    cached = CachingChatModel(model=inner)
    prompt, completions, tools = exported(*page_one())
    score = ranker(cached)
    assert score(prompt, completions, tools) == inner.scores
    assert score(prompt, completions, tools) == inner.scores
    assert score(prompt, completions[:-1] + completions[:1], tools) != []  # another question
    assert inner.asked == [8, 8] and cached.score_counts == {"scored": 2, "saved": 1}
    translator = RespondingChatModel(respond=echo_translator())
    for _ in range(2):  # a second translation of the same pages: every decision is a hit
        result = LongMTAgent(translator, policy="auto", policy_model=cached, page_sentences=2,
                             decide="rank").translate(LINES, src="en", tgt="de")
    ranked = len(result.steps) - 1  # page 2 (from 1) is the page asked about above
    assert ranked >= 2 and len(inner.asked) == 2 + ranked - 1
    assert cached.score_counts == {"scored": 2 + ranked - 1, "saved": 1 + 1 + ranked}


def test_a_cache_in_front_of_a_model_that_cannot_rank_names_that_model():
    from stepwise.llm.cache import CachingChatModel
    from stepwise.llm.ranking import ranker

    cached = CachingChatModel(model=RespondingChatModel(respond=echo_translator()))
    with pytest.raises(StepwiseError, match="rank decisions need an hf: or tiny policy model "
                                            r"for now \(RespondingChatModel"):
        ranker(cached)
