"""Tool-call ids: one helper gives every agent ids unique across its whole history."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from stepwise.agents.longmt import LongMTAgent
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ai
from stepwise.tools.call_ids import unique_call_ids, used_call_ids
from tests.test_longmt_agent import LINES, echo_translator


def hashed_call(pages: list[int], call_id: str = "h1") -> dict:
    """A call as a Hermes parser gives it: the id hashes the call text, so it repeats."""
    return {"name": "view_summaries", "args": {"pages": pages}, "id": call_id,
            "type": "tool_call"}


def test_ids_are_unique_across_a_resumed_history_and_the_same_when_rebuilt():
    first = AIMessage("", tool_calls=[hashed_call([1])])
    history = [HumanMessage("page 2"), first, ToolMessage("s1", tool_call_id="h1")]
    again = AIMessage("", tool_calls=[hashed_call([1]), hashed_call([2], "")],
                      invalid_tool_calls=[{"name": None, "args": "{", "id": "h1",
                                           "error": None, "type": "invalid_tool_call"}])
    tidy = unique_call_ids(again, history, 2)
    ids = [c["id"] for c in [*tidy.tool_calls, *tidy.invalid_tool_calls]]
    assert ids == ["call_2_0", "call_2_1", "invalid_2_0"]
    assert used_call_ids(history).isdisjoint(ids)
    rebuilt = [m.model_copy() for m in history]  # a resumed run replays the same history
    assert unique_call_ids(again, rebuilt, 2) == tidy
    clash = AIMessage("", tool_calls=[hashed_call([1], "call_2_1"), hashed_call([2], "")])
    assert [c["id"] for c in unique_call_ids(clash, history, 2).tool_calls] == \
        ["call_2_1", "call_2_1_1"]  # a given id that looks like a fresh one stays unique


def test_longmt_rounds_that_repeat_an_id_keep_each_call_apart():
    """A decision's second round repeats the first round's call id: each module call must
    still be recorded with its own arguments."""

    def decider(messages, tools):
        rounds = sum(isinstance(m, AIMessage) for m in messages)
        return ai("", ("view_summaries", {"pages": [rounds + 1]}))  # id call_view_summaries_0

    result = LongMTAgent(RespondingChatModel(respond=echo_translator()), policy="auto",
                         policy_model=RespondingChatModel(respond=decider),
                         page_sentences=2).translate(LINES, src="en", tgt="en")
    step = result.steps[2]  # page 3: pages 1 and 2 are earlier pages
    assert [m["args"] for m in step["modules"]] == [{"pages": [1]}, {"pages": [2]}]
