"""The think agent: budgets, think rate, errors as context, ask_human, kill and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from stepwise.agents.think import RunMetrics, ThinkAgent, ThinkBudget
from stepwise.agents.think.metrics import RunMetrics as Metrics
from stepwise.checkpoints import sqlite_checkpointer
from stepwise.errors import ConfigError, StepwiseError
from stepwise.testing.scripted import ScriptedChatModel, ai

from .conftest import REPO


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def bound_per_turn(model: ScriptedChatModel) -> list[list[str]]:
    return [call["tools"] for call in model.calls]


def results(run) -> list[ToolMessage]:
    return [m for m in run.messages if isinstance(m, ToolMessage)]


# -- budgets ------------------------------------------------------------------------------


def test_spent_call_budget_unbinds_think_tools_and_says_so():
    model = ScriptedChatModel(answers=[
        ai("", ("think", {"thought": "first"})),
        ai("", ("think", {"thought": "second"})),
        ai("", ("think", {"thought": "one more, though unbound"})),
        ai("", ("add", {"a": 2, "b": 3})),
        ai("5"),
    ])
    agent = ThinkAgent(model, [add], budget=ThinkBudget(max_calls=2))
    run = agent.run("2+3?")
    bound = bound_per_turn(model)
    assert bound[0] == ["add", "think"] and bound[1] == ["add", "think"]
    assert bound[2:] == [["add"], ["add"], ["add"]]
    replies = results(run)
    assert "Think budget spent: 2/2 think calls" in replies[1].text
    assert replies[2].status == "error" and "think budget is spent" in replies[2].text
    assert run.status == "answered" and run.answer == "5"
    assert run.metrics.think_calls == 2 and [t["thought"] for t in run.thoughts] == \
        ["first", "second"]


def test_token_budget_counts_the_thought_and_unbinds():
    model = ScriptedChatModel(answers=[
        ai("", ("think", {"thought": "a rather long thought about adding two numbers"})),
        ai("done"),
    ])
    run = ThinkAgent(model, [add], budget=ThinkBudget(max_tokens=5)).run("go")
    assert run.metrics.think_tokens > 5
    assert bound_per_turn(model) == [["add", "think"], ["add"]]
    assert "think tokens" in results(run)[0].text


def test_zero_budget_never_binds_think_tools():
    model = ScriptedChatModel(answers=[ai("no thinking")])
    ThinkAgent(model, [add], think_tools=["think", "plan"],
               budget=ThinkBudget(max_calls=0)).run("go")
    assert bound_per_turn(model) == [["add"]]


# -- metrics ------------------------------------------------------------------------------


def test_think_rate_is_the_share_of_turns_that_thought():
    assert Metrics(turns=4, think_turns=1).think_rate == 0.25
    assert Metrics().think_rate == 0.0
    total = Metrics.combine([Metrics(turns=3, think_turns=3), Metrics(turns=1)])
    assert (total.turns, total.think_turns, total.think_rate) == (4, 3, 0.75)


def test_run_metrics_count_turns_calls_and_tokens():
    model = ScriptedChatModel(answers=[
        ai("", ("think", {"thought": "a"}), ("think", {"thought": "b"})),  # one turn, 2 calls
        ai("", ("add", {"a": 1, "b": 1})),
        ai("", ("think", {"thought": "c"}), ("add", {"a": 2, "b": 2})),
        ai("4"),
    ])
    run = ThinkAgent(model, [add]).run("sum")
    m = run.metrics
    assert (m.turns, m.think_turns, m.think_calls, m.tool_calls) == (4, 2, 3, 5)
    assert m.think_rate == 0.5 and m.tool_errors == 0
    assert m.tokens_in > 0 and m.tokens_out > 0
    assert run.metrics.as_dict()["think_rate"] == 0.5
    assert isinstance(run.metrics, RunMetrics)


# -- errors as context --------------------------------------------------------------------


def test_every_kind_of_bad_call_becomes_an_error_the_model_sees():
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("boom")

    model = ScriptedChatModel(answers=[
        ai("", ("nope", {})),
        ai("", ("add", {"a": "x", "b": 1})),
        ai("", ("add", {"a": 1, "b": 2})),  # a success resets the streak
        ai("", invalid=['{"a": 1,']),
        ai("", ("explode", {})),
        ai("ok"),
    ])
    run = ThinkAgent(model, [add, explode]).run("go")
    texts = [m.text for m in results(run)]
    assert "no tool named 'nope'" in texts[0] and "Available tools: add, explode, think" in texts[0]
    assert "wrong arguments for add: a:" in texts[1]
    assert texts[2] == "3"
    assert "could not parse" in texts[3] and '{"a": 1,' in texts[3]
    assert "explode failed: RuntimeError: boom" in texts[4]
    assert run.status == "answered" and run.metrics.tool_errors == 4


def test_three_errors_in_a_row_stop_the_run():
    model = ScriptedChatModel(answers=[
        ai("", ("nope", {})),
        ai("", ("add", {"a": "x", "b": 1})),
        ai("", invalid=["{broken"]),
        ai("never reached"),
    ])
    run = ThinkAgent(model, [add]).run("go")
    assert run.status == "too_many_errors"
    assert len(model.calls) == 3 and run.answer == ""


def test_ask_human_takes_over_after_three_errors_and_resumes():
    model = ScriptedChatModel(answers=[
        ai("", ("nope", {})), ai("", ("nope", {})), ai("", ("nope", {})),
        ai("", ("add", {"a": 1, "b": 2})),
        ai("3"),
    ])
    agent = ThinkAgent(model, [add], ask_human=True)
    run = agent.run("go", thread_id="t")
    assert run.status == "waiting_for_human"
    assert run.waiting_for["reason"] == "too_many_errors" and len(run.waiting_for["errors"]) == 3
    run = agent.resume("t", "use the add tool")
    assert run.status == "answered" and run.answer == "3"
    human = [m for m in run.messages if isinstance(m, HumanMessage)][-1]
    assert "use the add tool" in human.text


def test_ask_human_pauses_without_rerunning_the_tools_before_it():
    ran = []

    @tool
    def log_it(text: str) -> str:
        """Write a line."""
        ran.append(text)
        return "logged"

    model = ScriptedChatModel(answers=[
        ai("", ("log_it", {"text": "once"}), ("ask_human", {"question": "Refund or voucher?"})),
        ai("Voucher it is."),
    ])
    agent = ThinkAgent(model, [log_it], ask_human=True)
    run = agent.run("help", thread_id="t")
    assert run.status == "waiting_for_human" and run.waiting_for["question"] == "Refund or voucher?"
    with pytest.raises(StepwiseError, match="waits for a human"):
        agent.resume("t")
    run = agent.resume("t", "voucher")
    assert ran == ["once"]
    assert run.answer == "Voucher it is."
    assert any(m.text == "voucher" and m.name == "ask_human" for m in results(run))


def test_bad_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown think tool 'ponder'"):
        ThinkAgent(ScriptedChatModel(answers=[]), think_tools=["ponder"])
    with pytest.raises(ConfigError, match="unique"):
        ThinkAgent(ScriptedChatModel(answers=[]), [add, add])
    with pytest.raises(StepwiseError, match="already has a run"):
        agent = ThinkAgent(ScriptedChatModel(answers=[ai("x"), ai("y")]))
        agent.run("a", thread_id="same")
        agent.run("b", thread_id="same")


# -- thoughts and native reasoning --------------------------------------------------------


def test_native_reasoning_moves_to_the_thought_channel():
    answer = AIMessage("42", additional_kwargs={"reasoning_content": "six times seven"})
    run = ThinkAgent(ScriptedChatModel(answers=[answer])).run("?")
    assert run.thoughts == [{"turn": 1, "tool": "native", "request": "",
                             "thought": "six times seven", "tokens": 3}]
    assert "reasoning_content" not in run.messages[-1].additional_kwargs
    kept = ThinkAgent(ScriptedChatModel(answers=[answer]), strip_reasoning=False).run("?")
    assert kept.messages[-1].additional_kwargs["reasoning_content"] == "six times seven"


def test_prompt_think_tool_thinks_with_its_own_model_over_the_transcript():
    thinker = ScriptedChatModel(answers=[ai("1. call add\n2. answer")])
    model = ScriptedChatModel(answers=[
        ai("", ("plan", {"request": "how to sum?"})), ai("", ("add", {"a": 1, "b": 1})), ai("2"),
    ])
    run = ThinkAgent(model, [add], think_tools=["plan"], think_model=thinker,
                     system_prompt="Only use add.").run("what is 1+1?")
    assert len(thinker.calls) == 1 and thinker.calls[0]["tools"] == []
    assert run.thoughts[0]["tool"] == "plan" and run.thoughts[0]["thought"].startswith("1. call")
    assert results(run)[0].text.startswith("1. call add")


# -- kill and resume ----------------------------------------------------------------------

KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from langchain_core.tools import tool
from stepwise.agents.think import ThinkAgent
from stepwise.checkpoints import sqlite_checkpointer
from stepwise.testing.scripted import ScriptedChatModel, ai

folder = Path(sys.argv[1])

@tool
def note(text: str) -> str:
    "Append a line to the notes."
    with open(folder / "notes.txt", "a") as f:
        f.write(text + "\\n")
    return "noted"

@tool
def crash() -> str:
    "Dies the first time it runs."
    marker = folder / "crashed"
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"

model = ScriptedChatModel(answers=[ai("", ("note", {"text": "a"})), ai("", ("crash", {})),
                                   ai("", ("note", {"text": "b"})), ai("done")])
agent = ThinkAgent(model, [note, crash], checkpointer=sqlite_checkpointer(folder / "c.sqlite"))
run = agent.resume("job") if sys.argv[2] == "resume" else agent.run("work", thread_id="job")
print(run.status, run.answer, run.metrics.turns)
"""


def test_a_killed_run_resumes_from_its_sqlite_checkpoints(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.run([sys.executable, str(script), str(tmp_path), "run"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    assert first.returncode == -9, first.stderr
    assert (tmp_path / "notes.txt").read_text() == "a\n"
    second = subprocess.run([sys.executable, str(script), str(tmp_path), "resume"],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["answered", "done", "4"]
    assert (tmp_path / "notes.txt").read_text() == "a\nb\n"  # the first note was not redone


def test_resume_of_an_unknown_thread_is_a_clear_error(tmp_path):
    agent = ThinkAgent(ScriptedChatModel(answers=[]),
                       checkpointer=sqlite_checkpointer(tmp_path / "c.sqlite"))
    with pytest.raises(StepwiseError, match="no run with thread id 'ghost'"):
        agent.resume("ghost")


def test_metrics_are_json_ready():
    run = ThinkAgent(ScriptedChatModel(answers=[ai("hi")])).run("hello")
    assert json.loads(json.dumps(run.metrics.as_dict()))["turns"] == 1


# -- edge cases of ids, budgets and limits ------------------------------------------------


class FixedIds(ScriptedChatModel):
    """Answers with the ids exactly as scripted (as Hermes parsers repeat text-hashed ids)."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        result = super()._generate(messages, stop, run_manager, **kwargs)
        turn = sum(isinstance(m, AIMessage) for m in messages)
        scripted = self.answers[turn]
        result.generations[0].message.tool_calls = scripted.tool_calls
        return result


def test_ids_repeated_across_turns_or_missing_still_pair_each_call_with_one_reply():
    from stepwise.llm.messages import to_chat_dicts

    same = [{"name": "ask_human", "args": {"question": "ok?"}, "id": "dup", "type": "tool_call"}]
    missing = [{"name": "add", "args": {"a": 1, "b": 1}, "id": None, "type": "tool_call"}]
    model = FixedIds(answers=[AIMessage("", tool_calls=same), AIMessage("", tool_calls=same),
                              AIMessage("", tool_calls=missing), AIMessage("done")])
    agent = ThinkAgent(model, [add], ask_human=True)
    run = agent.run("go", thread_id="t")
    run = agent.resume("t", "first")
    assert run.status == "waiting_for_human"  # the second question, same id, is asked too
    run = agent.resume("t", "second")
    assert run.status == "answered"
    wire = to_chat_dicts(run.messages)
    for i, row in enumerate(wire):
        if row.get("tool_calls"):
            ids = [c["id"] for c in row["tool_calls"]]
            answered = [r["tool_call_id"] for r in wire[i + 1:i + 1 + len(ids)]]
            assert sorted(ids) == sorted(answered) and len(set(ids)) == len(ids)
    all_ids = [c["id"] for r in wire for c in r.get("tool_calls", [])]
    assert len(set(all_ids)) == len(all_ids) == 3


def test_think_calls_over_budget_in_one_message_are_refused_but_not_strikes():
    model = ScriptedChatModel(answers=[
        ai("", *[("think", {"thought": f"t{i}"}) for i in range(4)]), ai("fine"),
    ])
    run = ThinkAgent(model, [add], budget=ThinkBudget(max_calls=1)).run("go")
    assert run.status == "answered" and run.metrics.think_calls == 1
    assert sum("think budget is spent" in m.text for m in results(run)) == 3


def test_a_question_on_the_last_turn_is_still_asked_and_answered():
    model = ScriptedChatModel(answers=[ai("", ("ask_human", {"question": "proceed?"}))])
    agent = ThinkAgent(model, ask_human=True, max_turns=1)
    run = agent.run("go", thread_id="t")
    assert run.status == "waiting_for_human"
    run = agent.resume("t", "no")
    assert run.status == "turn_limit" and results(run)[-1].text == "no"
    with pytest.raises(StepwiseError, match="has finished; there is nothing to answer"):
        agent.resume("t", "again")


def test_a_malformed_call_goes_back_to_the_server_as_valid_json():
    from stepwise.llm.messages import to_chat_dicts

    (row,) = to_chat_dicts([ai("", invalid=['{"reservation_id": "4WQ150"'])])
    function = row["tool_calls"][0]["function"]
    assert function["name"] == "unparsed_call"
    assert json.loads(function["arguments"]) == {"unparsed": '{"reservation_id": "4WQ150"'}


def test_prompted_thinking_counts_in_the_run_tokens():
    thinker = ScriptedChatModel(answers=[ai("a plan with five words")])
    model = ScriptedChatModel(answers=[ai("", ("plan", {"request": "what next?"})), ai("ok")])
    run = ThinkAgent(model, think_tools=["plan"], think_model=thinker).run("hi")
    # The scripted model counts words: 5 for a call, 1 for "ok"; the thinker wrote 5.
    assert run.metrics.think_tokens == 5 and run.metrics.tokens_out == 5 + 1 + 5
    prompt_words = len(thinker.calls[0]["kwargs"].get("x", "").split())  # no kwargs: empty
    assert prompt_words == 0 and run.metrics.tokens_in > 50  # the plan prompt is counted


def test_native_thinking_reaches_a_recorded_model(tmp_path):
    from stepwise.agents.think import NativeThinking
    from stepwise.llm import record
    from stepwise.llm.openai_compat import OpenAICompatChatModel

    inner = OpenAICompatChatModel(base_url="http://127.0.0.1:9/v1", model="m")
    recorder = record(inner, str(tmp_path / "c.jsonl"))
    assert NativeThinking(enabled=False).call_kwargs(recorder) == {
        "chat_template_kwargs": {"enable_thinking": False}}
