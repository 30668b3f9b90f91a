"""The README's commands are the ones CI and users actually run, and every snippet and
command block in it runs as pasted: each Python block is executed with a stand-in for
the server or weights it names, each bash block is checked for placeholder syntax, and
its cheap commands are run."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from .conftest import REPO

README = (REPO / "README.md").read_text()
SERVED = ("http://localhost:8000/v1", "http://127.0.0.1:8765/v1")  # servers the README names


def fenced(text: str, lang: str) -> list[str]:
    return [block.strip() for block in re.findall(rf"```{lang}\n(.*?)```", text, re.DOTALL)]


def fenced_bash(text: str) -> list[str]:
    return fenced(text, "bash")


def commands(block: str) -> list[str]:
    """A bash block's command lines, continuation lines joined, comments kept."""
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_test_command():
    readme = fenced_bash(README)
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert readme[1] in ci_lines
    assert readme[1].endswith("python -m pytest")
    # After it, only the real model's tests, which the default run leaves out.
    assert ci_lines[-1].endswith("python -m pytest -m real_model")


def test_torch_is_pinned_before_anything_that_needs_it():
    for command in fenced_bash(README)[:2]:
        assert command.index("torch==2.13.0") < command.index(
            '-e ".[hf,train,embed,distributed,real,dev]"')


# -- Python blocks: each one runs, with the stand-in its key chooses --------------------


def patch_from_uri(monkeypatch, model) -> list[str]:
    """``stepwise.llm.from_uri`` answering with ``model``; returns the URIs asked for, so a
    test can check the block asked for the model the README means."""
    import stepwise.llm

    asked: list[str] = []

    def from_uri(uri, *args, **kwargs):
        asked.append(uri)
        return model

    monkeypatch.setattr(stepwise.llm, "from_uri", from_uri)
    return asked


def run_block(code: str) -> dict:
    scope: dict = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 -- our own README
    return scope


def think_agent(code, tmp_path, monkeypatch, server):
    """A scripted model for the 8B server: the agent's turns are what is shown, not a model."""
    from stepwise.testing.scripted import ScriptedChatModel, ai

    (prompt,) = fenced(README, "markdown")
    (tmp_path / "critic.md").write_text(prompt)
    scripted = ScriptedChatModel(
        answers=[ai("", ("forecast", {"city": "Paris"})),
                 ai("", ("critic", {"request": "Take an umbrella."})),
                 ai("Yes: rain is forecast, 14°C.")],
        plain_answers=["It leaves out the temperature."])
    asked = patch_from_uri(monkeypatch, scripted)
    run = run_block(code)["run"]
    assert asked == ["openai:http://localhost:8000/v1"]
    assert run.answer.startswith("Yes: rain")
    assert run.thoughts[0]["tool"] == "critic"
    assert run.thoughts[0]["thought"] == "It leaves out the temperature."
    assert run.metrics.think_rate == 1 / 3


def longmt_agent(code, tmp_path, monkeypatch, server):
    """A rule-based translator for the 7B server (LongMT asks a fresh prompt per step, which
    the echoing test server cannot answer line by line), and a short ``doc0.en``."""
    from stepwise.testing.responding import RespondingChatModel

    from .test_longmt_agent import LINES, echo_translator

    (tmp_path / "doc0.en").write_text("\n".join(LINES) + "\n")
    asked = patch_from_uri(monkeypatch, RespondingChatModel(respond=echo_translator()))
    result = run_block(code)["result"]
    assert asked == ["openai:http://localhost:8000/v1"]
    assert len(result.lines) == len(LINES)  # one translation per source line
    assert all(line.startswith("T:") for line in result.lines)
    assert result.steps


def forced_tool_call(code, tmp_path, monkeypatch, server):
    """A scripted answer for SmolLM2, whose weights a test run may not have: the forced call
    on the real model is tests/test_real_model.py's, here only the snippet's API is."""
    from stepwise.testing.scripted import ScriptedChatModel, ai

    call = ai("", ("get_weather", {"city": "Paris"}))
    call.response_metadata = {"completion_token_ids": [1, 2], "completion_logprobs": [-0.1, -0.2]}
    scripted = ScriptedChatModel(answers=[call])
    asked = patch_from_uri(monkeypatch, scripted)
    answer = run_block(code)["answer"]
    assert asked == ["hf:smollm2"]
    assert answer.tool_calls[0]["name"] == "get_weather"
    assert answer.tool_calls[0]["args"] == {"city": "Paris"}
    assert scripted.calls[0]["tools"] == ["get_weather"]
    assert scripted.calls[0]["kwargs"]["tool_choice"]


def openai_compat(code, tmp_path, monkeypatch, server):
    """The in-repo OpenAI-protocol server in place of vLLM: real HTTP, so what the snippet
    sends is checked on the wire."""
    from stepwise.testing.openai_server import Reply

    server.script(Reply(), Reply(content="a", reasoning="a is shorter"))
    scope = run_block(code.replace(SERVED[0], server.url))
    assert len(scope["samples"]) == 4
    assert len(server.requests) == 2  # four generations in one request
    first, second = server.requests
    assert first["n"] == 4 and first["chat_template_kwargs"] == {"enable_thinking": True}
    assert first["thinking_token_budget"] == 512
    assert second["structured_outputs"] == {"choice": ["a", "b"]}
    assert scope["answer"].additional_kwargs["reasoning_content"] == "a is shorter"


# A block's stand-in is chosen by a string only that block holds.
PYTHON_STAND_INS: dict[str, Callable] = {
    "ThinkAgent(": think_agent,
    "LongMTAgent(": longmt_agent,
    'bind_tools([get_weather], tool_choice="required")': forced_tool_call,
    "OpenAICompatChatModel(": openai_compat,
}


@pytest.mark.parametrize("code", fenced(README, "python"),
                         ids=lambda code: code.splitlines()[-1][:40])
def test_every_python_block_runs_as_pasted(code, tmp_path, monkeypatch, server):
    chosen = [run for key, run in PYTHON_STAND_INS.items() if key in code]
    assert len(chosen) == 1, f"give this README block one stand-in here:\n{code}"
    monkeypatch.chdir(tmp_path)
    chosen[0](code, tmp_path, monkeypatch, server)


def test_every_python_stand_in_has_its_block():
    blocks = fenced(README, "python")
    for key in PYTHON_STAND_INS:
        assert sum(key in code for code in blocks) == 1, key


# -- bash blocks: pasteable, and the cheap commands run -----------------------------------

# Commands run here (against the local test server where they name a server)...
RUN = (
    "stepwise think --world airline --task cancel-insured --model sim:airline-oracle",
    "stepwise sim make --world translation",
    'stepwise ask "Weather in Paris?" -m openai:',
    'stepwise ask "Hello" --model openai:',
)
# ... and those left out, each with why.
SKIP = {
    "python3 -m venv": "creates an environment and installs everything",
    "stepwise models get": "downloads the real model",
    "stepwise think --eval --world airline --model tiny": "18 tasks, twice, on a torch model",
    "stepwise think --eval --world airline --model openai:": "needs a served 8B model",
    "stepwise translate doc0.en": "needs a served 7B model",
    "stepwise translate wmt24pp-en-zh/": "needs the real documents and a recorded cassette",
    "stepwise translate synth/dataset.jsonl -m sim:translator --page-sentences 5":
        "eight policies over six documents (about 10 s)",
    "stepwise explore": "64 simulations per document",
    "stepwise tree run1": "needs the explore run",
    "stepwise train dpo": "training",
    "stepwise translate synth/dataset.jsonl -m sim:translator --compare none,auto,oracle":
        "needs the trained policy",
    "python -m llama_cpp.server": "needs llama-cpp-python and the GGUF",
    "STEPWISE_LLAMA_SERVER=": "the real model's tests, behind a real server",
    "vllm serve": "needs vLLM and a GPU",
    "stepwise ask \"Hello\" --model hf:/models/": "needs local weights",
    "stepwise simulate party": "loads the sentence-embedding model, 12 world steps",
    "stepwise simulate smallville": "25 agents over a game day (minutes of wall time)",
    "stepwise interview party-run": "needs the simulate run",
    "stepwise memory party-run": "needs the simulate run",
}
PLACEHOLDER = re.compile(r"\[-|\.\.\.|<[A-Za-z_]+>")


@pytest.mark.parametrize("block", fenced_bash(README), ids=lambda b: b.split()[0:3])
def test_every_bash_block_is_pasteable(block):
    assert not PLACEHOLDER.findall(block), f"placeholder syntax in a bash block:\n{block}"
    for command in commands(block):
        shlex.split(command, comments=True)  # balanced quotes


def test_every_bash_command_is_run_or_skipped_for_a_reason():
    for block in fenced_bash(README):
        for command in commands(block):
            kinds = [p for p in RUN if command.startswith(p)] + \
                    [p for p in SKIP if command.startswith(p)]
            assert len(kinds) == 1, f"add this README command to RUN or SKIP: {command}"


def test_the_cheap_bash_commands_run(tmp_path, monkeypatch, server):
    """Each block in a folder of its own, its commands in order."""
    from stepwise.cli import app

    ran = 0
    for number, block in enumerate(fenced_bash(README)):
        folder = tmp_path / f"block{number}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        for command in commands(block):
            if not command.startswith(RUN):
                continue
            for url in SERVED:
                command = command.replace(url, server.url)
            argv = shlex.split(command, comments=True)
            result = CliRunner().invoke(app, argv[1:])
            assert result.exit_code == 0, f"{command}\n{result.output}"
            ran += 1
    assert ran >= len(RUN)
