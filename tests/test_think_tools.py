"""Think tools, the tool executor, native thinking controls, and the agent in the airline world."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from stepwise.agents.think import NativeThinking, ThinkAgent
from stepwise.agents.think.worlds import open_episode
from stepwise.errors import ConfigError
from stepwise.llm import from_uri
from stepwise.llm.openai_compat import OpenAICompatChatModel
from stepwise.testing.openai_server import Reply
from stepwise.testing.scripted import ScriptedChatModel, ai
from stepwise.tools.executor import run_tool_calls
from stepwise.tools.think import (
    PromptSpec,
    PromptThinkTool,
    builtin_think_tools,
    load_think_tools,
    render_transcript,
)


def test_shipped_think_tools_and_their_schemas():
    assert builtin_think_tools() == ["think", "plan", "reflect", "verify"]
    tools = load_think_tools(builtin_think_tools())
    schemas = {t.name: t.tool_call_schema.model_json_schema()["properties"] for t in tools}
    assert set(schemas["think"]) == {"thought"}
    for name in ("plan", "reflect", "verify"):
        assert set(schemas[name]) == {"request", "context"}  # transcript and policy are hidden


def test_a_prompt_folder_overrides_a_shipped_prompt(tmp_path):
    (tmp_path / "plan.md").write_text(
        "---\ndescription: My planner.\n---\nPLAN {request} OVER {context} FOR {goal}\n")
    (plan,) = load_think_tools(["plan"], prompts_dir=tmp_path)
    assert plan.description == "My planner."
    text = plan.prompt("next?", "recent", [HumanMessage("book a flight")])
    assert text == "PLAN next? OVER user: book a flight FOR book a flight"


@pytest.mark.parametrize(("text", "message"), [
    ("no header {request} {context}", "must start with a '---' header"),
    ("---\nname: x\n---\n{request} {context}", "needs a description"),
    ("---\ndescription: d\n---\nonly {context}", "missing {request}"),
    ("---\ndescription: [unclosed\n---\n{request} {context}", "header is not YAML"),
])
def test_bad_prompt_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.md"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        PromptSpec.from_file(path)


def test_other_braces_in_a_prompt_are_left_alone():
    spec = PromptSpec(name="x", description="d", template='{"json": 1} {request} {context}')
    assert spec.fill(request="r", context="c") == '{"json": 1} r c'


def test_transcript_shows_calls_results_and_errors():
    messages = [
        HumanMessage("cancel 4WQ150"),
        ai("", ("cancel_reservation", {"reservation_id": "4WQ150"})),
        ToolMessage("Error: refused", tool_call_id="call_cancel_reservation_0",
                    name="cancel_reservation", status="error"),
        AIMessage("I could not."),
    ]
    assert render_transcript(messages).splitlines() == [
        "user: cancel 4WQ150",
        "assistant called cancel_reservation(reservation_id='4WQ150')",
        "cancel_reservation (error) returned: Error: refused",
        "assistant: I could not.",
    ]
    assert render_transcript(messages, last=1) == "assistant: I could not."


def test_a_prompt_tool_without_a_model_says_so():
    tool = PromptThinkTool(PromptSpec(name="x", description="d", template="{request}{context}"))
    (reply,) = run_tool_calls(ai("", ("x", {"request": "r"})), [tool])
    assert reply.status == "error" and "has no model" in reply.text


def test_native_thinking_controls_reach_backends_that_have_them(tiny_path):
    native = NativeThinking(enabled=False, token_budget=64)
    openai = OpenAICompatChatModel(base_url="http://127.0.0.1:9/v1", model="m")
    assert native.call_kwargs(openai) == {"chat_template_kwargs": {"enable_thinking": False},
                                          "thinking_token_budget": 64}
    hf = from_uri("tiny")
    assert native.call_kwargs(hf) == {"chat_template_kwargs": {"enable_thinking": False}}
    assert native.call_kwargs(from_uri("sim:echo")) == {}
    assert NativeThinking().call_kwargs(openai) == {}


def test_native_thinking_goes_over_the_wire_and_reasoning_becomes_a_thought(server):
    server.script(Reply(content="Paris.", reasoning="The capital of France is Paris."))
    model = OpenAICompatChatModel(base_url=server.url, model="m", max_retries=0)
    run = ThinkAgent(model, native=NativeThinking(enabled=True, token_budget=100)).run("Capital?")
    body = server.requests[-1]
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert body["thinking_token_budget"] == 100
    assert run.answer == "Paris."
    assert run.thoughts[0]["tool"] == "native" and "capital" in run.thoughts[0]["thought"]
    assert run.metrics.native_reasoning_tokens > 0


# -- the agent in the airline world (a simulation) ----------------------------------------


def test_a_policy_refusal_reaches_the_model_and_leaves_the_database_alone():
    episode = open_episode("airline", "cancel-late-no-insurance")
    before = episode.world.state()
    model = ScriptedChatModel(answers=[
        ai("", ("cancel_reservation", {"reservation_id": "Z7K2M9"})),
        ai("Sorry, I cannot cancel it."),
    ])
    run = ThinkAgent(model, episode.tools, system_prompt=episode.policy).run(episode.request)
    refusal = next(m for m in run.messages if isinstance(m, ToolMessage))
    assert refusal.status == "error" and "24 hours" in refusal.text
    assert episode.world.state() == before
    assert episode.check() == {"success": True, "differences": []}


def test_a_wrong_action_fails_the_state_check_with_the_difference():
    episode = open_episode("airline", "cancel-insured")
    model = ScriptedChatModel(answers=[
        ai("", ("change_cabin", {"reservation_id": "4WQ150", "cabin": "business"})),
        ai("Upgraded instead."),
    ])
    ThinkAgent(model, episode.tools, system_prompt=episode.policy).run(episode.request)
    check = episode.check()
    assert check["success"] is False
    assert any("4WQ150" in line for line in check["differences"])


def test_a_fresh_world_rebuilt_from_history_matches_the_original():
    episode = open_episode("airline", "cancel-and-rebook")
    run = ThinkAgent(from_uri("sim:airline-oracle"), episode.tools,
                     system_prompt=episode.policy).run(episode.request)
    assert episode.check()["success"]
    rebuilt = open_episode("airline", "cancel-and-rebook")
    rebuilt.restore(run.messages)
    assert rebuilt.world.state() == episode.world.state()
    assert rebuilt.restored_calls >= 3


def test_the_tool_list_can_be_narrowed_by_name():
    episode = open_episode("airline", "cancel-insured", ["get_user", "cancel_reservation"])
    assert [t.name for t in episode.tools] == ["get_user", "cancel_reservation"]
