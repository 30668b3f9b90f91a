"""Errors at the right depth: a model that fails costs one page, trial or task; a bug in
stepwise raises; a tool that calls LangGraph's ``interrupt()`` pauses the run."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.think import ThinkAgent
from stepwise.agents.think.evaluate import evaluate
from stepwise.agents.think.options import ThinkOptions
from stepwise.errors import ModelBackendError
from stepwise.search.options import ExploreOptions
from stepwise.search.run import explore_tasks
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ScriptedChatModel, ai
from stepwise.tools.executor import run_tool_call
from tests.test_explorer import ChainEnv
from tests.test_longmt_agent import LINES, echo_translator


@tool
def approve_refund(amount: int) -> str:
    """Refund an amount once a person approves it."""
    answer = interrupt({"reason": "approval", "question": f"Refund {amount}?"})
    return f"refund of {amount}: {answer}"


@tool
def pausing(text: str) -> str:
    """What ``interrupt()`` raises inside a graph, raised here outside one."""
    raise GraphInterrupt(())


@tool
def broken(text: str) -> str:
    """A tool with a bug of its own."""
    raise KeyError(text)


def call(name: str, **args) -> dict:
    return {"name": name, "args": args, "id": "c1", "type": "tool_call"}


def test_an_interrupt_goes_up_while_a_tools_own_error_stays_a_message_to_the_model():
    with pytest.raises(GraphInterrupt):
        run_tool_call(call("pausing", text="x"), {"pausing": pausing})
    reply = run_tool_call(call("broken", text="x"), {"broken": broken})
    assert reply.status == "error" and reply.text == "Error: broken failed: KeyError: 'x'"


def test_a_tool_that_calls_interrupt_pauses_a_think_run_and_resumes_with_the_answer():
    model = ScriptedChatModel(answers=[ai("", ("approve_refund", {"amount": 40})),
                                       ai("Refunded.")])
    agent = ThinkAgent(model, [approve_refund])
    run = agent.run("refund me", thread_id="t")
    assert run.status == "waiting_for_human"
    assert run.waiting_for == {"reason": "approval", "question": "Refund 40?"}
    assert not [m for m in run.messages if isinstance(m, ToolMessage)]  # no error result
    run = agent.resume("t", "approved")
    replies = [m for m in run.messages if isinstance(m, ToolMessage)]
    assert [(m.text, m.status) for m in replies] == [("refund of 40: approved", "success")]
    assert run.status == "answered" and run.answer == "Refunded."


def test_a_bug_while_the_policy_model_decides_raises_instead_of_a_fallback():
    def decider(messages, tools):
        raise TypeError("unsupported operand")

    agent = LongMTAgent(RespondingChatModel(respond=echo_translator()), policy="auto",
                        page_sentences=2, policy_model=RespondingChatModel(respond=decider))
    with pytest.raises(TypeError, match="unsupported operand"):
        agent.translate(LINES, src="en", tgt="en")


def test_a_failed_model_is_one_failed_explore_task_and_a_bug_raises(tmp_path):
    def make_env(task_id: str, error: BaseException):
        if task_id == "b":
            raise error
        env = ChainEnv()
        env.task_id = task_id
        return env

    options = ExploreOptions(simulations=6, seed=0)
    report = explore_tasks(["a", "b"], lambda t: make_env(t, ModelBackendError("server down")),
                           options, tmp_path / "model", env_name="chain")
    assert report.failed == {"b": "server down"} and report.finished == 1
    with pytest.raises(TypeError, match="a bug"):
        explore_tasks(["a", "b", "c"], lambda t: make_env(t, TypeError("a bug")), options,
                      tmp_path / "bug", env_name="chain", workers=1)
    assert not (tmp_path / "bug" / "summary.json").exists()
    assert not (tmp_path / "bug" / "trees" / "c.json").exists()  # nothing started after it


def test_think_eval_counts_a_failed_model_as_one_trial_and_raises_a_bug():
    tasks = ["cancel-insured", "book-six-passengers"]

    def respond(messages, tools, error: BaseException):
        request = next(m.text for m in messages if isinstance(m, HumanMessage))
        if "six" in request.lower():
            raise error
        return AIMessage("Done.")

    failed = RespondingChatModel(respond=lambda m, t: respond(m, t, ModelBackendError("504")))
    report = evaluate(failed, ThinkOptions(), tasks=tasks)
    assert report.errors == 1 and [o.error for o in report.outcomes] == [None, "504"]
    buggy = RespondingChatModel(respond=lambda m, t: respond(m, t, TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        evaluate(buggy, ThinkOptions(), tasks=tasks)
