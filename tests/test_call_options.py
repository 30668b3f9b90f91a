"""Bounded model calls: the options every model-calling command takes, and where they land."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.longmt.page_steps import page_tokens
from stepwise.cli import app
from stepwise.cli.common import CallOptions, model_from_uri
from stepwise.llm.hf import HFChatModel
from stepwise.llm.openai_compat import OpenAICompatChatModel
from stepwise.llm.replay import ReplayChatModel
from stepwise.testing.responding import RespondingChatModel
from tests.conftest import REPO
from tests.test_longmt_agent import LINES, echo_translator

CASSETTE = REPO / "scenarios" / "cassettes" / "chat-echo.jsonl"


def options(**given) -> CallOptions:
    values = {name: given.get(name) for name in
              ("max_tokens", "timeout", "temperature", "seed", "repetition_penalty")}
    return CallOptions.from_cli(300, **values)


def test_defaults_reach_only_backends_with_the_field_and_given_options_always_count():
    calls = options(temperature=0.0, repetition_penalty=1.2)
    assert calls.max_tokens == 300 and calls.given == {"temperature", "repetition_penalty"}
    kwargs, dropped = calls.model_kwargs(OpenAICompatChatModel.model_fields)
    assert kwargs == {"max_tokens": 300, "temperature": 0.0,
                      "extra_body": {"repetition_penalty": 1.2}} and dropped == []
    kwargs, dropped = calls.model_kwargs({"prefix"})  # a simulation: nothing to bound
    assert kwargs == {} and dropped == ["--temperature", "--repetition-penalty"]


def test_a_lower_command_default_never_overrides_the_users_max_tokens():
    assert options().capped(128).max_tokens == 128
    assert options(max_tokens=1000).capped(128).max_tokens == 1000
    assert options(max_tokens=64).capped(128).max_tokens == 64


def test_models_from_uris_take_the_options_their_backend_has(capsys):
    tiny = model_from_uri("tiny", None, options(timeout=5.0, seed=3))
    assert isinstance(tiny, HFChatModel) and tiny.max_tokens == 300 and tiny.seed == 3
    server = model_from_uri("openai:http://127.0.0.1:9/v1", "m", options(timeout=5.0))
    assert server.max_tokens == 300 and server.timeout == 5.0
    assert model_from_uri("sim:translator", None, options()) is not None
    replayed = model_from_uri(f"replay:{CASSETTE}", None, options(max_tokens=5))
    # A replay answers as recorded: a limit would change every request key.
    assert isinstance(replayed, ReplayChatModel) and replayed.max_tokens is None
    assert "answers as recorded; --max-tokens do not apply" in capsys.readouterr().err


def test_ask_sends_every_option_to_a_server(server):
    done = CliRunner().invoke(app, [
        "ask", "hi", "-m", f"openai:{server.url}", "--model-name", "m", "--max-tokens", "7",
        "--temperature", "0", "--seed", "5", "--repetition-penalty", "1.3", "--timeout", "9"])
    assert done.exit_code == 0, done.stderr
    body = server.requests[-1]
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (7, 0, 5)
    assert body["repetition_penalty"] == 1.3


def test_ask_without_max_tokens_is_bounded_by_the_command_default(server):
    done = CliRunner().invoke(app, ["ask", "hi", "-m", f"openai:{server.url}",
                                    "--model-name", "m"])
    assert done.exit_code == 0, done.stderr
    assert server.requests[-1]["max_tokens"] == 512


def test_bad_call_options_are_user_mistakes():
    for bad in (["--max-tokens", "0"], ["--timeout", "-1"], ["--temperature", "-0.5"],
                ["--repetition-penalty", "0"]):
        done = CliRunner().invoke(app, ["ask", "hi", "-m", "sim:echo", *bad])
        assert done.exit_code == 2, bad
        assert "Invalid value" in done.stderr


def test_every_model_command_takes_the_call_options():
    commands = typer.main.get_command(app).commands
    for name in ("think", "translate", "explore", "loop", "ask", "simulate", "record",
                 "interview"):
        flags = {flag for param in commands[name].params for flag in param.opts}
        assert {"--max-tokens", "--timeout", "--temperature", "--repetition-penalty",
                "--seed"} <= flags, name


def test_longmt_sizes_each_translation_to_its_page_and_decisions_short():
    translator = RespondingChatModel(respond=echo_translator())
    agent = LongMTAgent(translator, policy="auto", page_sentences=2, decision_max_tokens=96,
                        translation_max_tokens=10_000)
    agent.translate(LINES, src="en", tgt="en")
    limits = {}
    for call in translator.calls:
        kind = "decision" if call["tools"] else "other"
        limits.setdefault(kind, set()).add(call["kwargs"].get("max_tokens"))
    assert limits["decision"] == {96}
    pages = agent.paginate(LINES, "en").pages
    assert {page_tokens(p.lines) for p in pages} <= limits["other"]
    assert page_tokens(["x" * 300]) == 4 * 300 // 3 + 4 + 64


def test_the_cap_bounds_a_long_page_and_no_limit_means_the_models_own():
    translator = RespondingChatModel(respond=echo_translator())
    LongMTAgent(translator, policy="none", page_sentences=4,
                translation_max_tokens=50).translate(LINES, src="en", tgt="en")
    assert {c["kwargs"].get("max_tokens") for c in translator.calls} >= {50}
    plain = RespondingChatModel(respond=echo_translator())
    LongMTAgent(plain, policy="auto", page_sentences=2).translate(LINES, src="en", tgt="en")
    assert all("max_tokens" not in c["kwargs"] for c in plain.calls)
