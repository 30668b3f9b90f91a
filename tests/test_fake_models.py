"""The two fake chat models are one: ``ScriptedChatModel`` is a ``RespondingChatModel``
whose answer function is a ``Script`` (answers by assistant-turn count)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import Script, ScriptedChatModel, ai


def test_a_scripted_model_is_a_responding_model_with_a_script():
    answers = [ai("", ("add", {"a": 1, "b": 2})), ai("3")]
    scripted = ScriptedChatModel(answers=answers)
    by_hand = RespondingChatModel(respond=Script(answers))
    assert isinstance(scripted, RespondingChatModel) and isinstance(scripted.respond, Script)
    first = [HumanMessage("1 + 2?")]
    for model in (scripted, by_hand):
        turn = model.invoke(first)
        assert turn.tool_calls[0]["id"] == "call_0_0"  # ids unique per turn
        answer = model.invoke([*first, turn, HumanMessage("and?")])
        assert (answer.text, answer.usage_metadata["output_tokens"]) == ("3", 1)
    asked = [[(type(m).__name__, m.text) for m in model.calls[1]["messages"]]
             for model in (scripted, by_hand)]
    assert asked[0] == asked[1] == [("HumanMessage", "1 + 2?"), ("AIMessage", ""),
                                    ("HumanMessage", "and?")]  # one record: the messages


def test_plain_requests_take_the_plain_answers_in_order():
    model = ScriptedChatModel(answers=[AIMessage("agent")], plain_answers=["one", "two"])
    asked = [model.invoke([HumanMessage("think")]).text for _ in range(3)]
    assert asked == ["one", "two", "two"]  # the last one repeats
