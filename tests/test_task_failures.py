"""One failure is one failed task: the others finish, are kept, and the exit status says so.

Also: a run whose model never calls a bound tool says so, instead of passing as success.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.think.evaluate import evaluate
from stepwise.agents.think.metrics import RunMetrics
from stepwise.agents.think.options import ThinkOptions
from stepwise.cli import app
from stepwise.search.options import ExploreOptions
from stepwise.search.run import explore_tasks
from stepwise.testing.openai_server import Reply
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ai
from tests.conftest import REPO
from tests.test_explorer import ChainEnv
from tests.test_longmt_agent import LINES, echo_translator

SCENARIO = REPO / "scenarios" / "longmt"
CASSETTE = SCENARIO / "cassettes" / "longmt-real-document.jsonl"
TASKS = ["cancel-insured", "book-six-passengers"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_think_eval_finishes_the_other_tasks_when_a_server_times_out_on_one(server):
    # The first task is answered at once (in words); every attempt at the second times out.
    server.script(Reply(content="I cannot do that."), *[Reply(delay=5) for _ in range(3)])
    done = invoke("think", "--eval", "--world", "airline", "--tasks", ",".join(TASKS),
                  "-m", f"openai:{server.url}", "--model-name", "m", "--timeout", "0.5",
                  "--json")
    assert done.exit_code == 1, done.stderr
    report = json.loads(done.stdout)
    first, second = report["outcomes"]
    assert first["task"] == TASKS[0] and first["error"] is None and first["status"] == "answered"
    assert second["status"] == "error" and second["error"] and not second["success"]
    assert report["errors"] == 1
    assert "1 of 2 task trials failed: book-six-passengers (trial 0)" in done.stderr
    assert "--tasks book-six-passengers" in done.stderr
    assert server.requests[0]["max_tokens"] == 512  # the think command's default


def test_evaluate_keeps_the_error_line_of_a_failing_task_and_warns_of_no_tool_calls():
    def respond(messages, tools):
        request = next(m.text for m in messages if isinstance(m, HumanMessage))
        if "six" in request.lower():
            raise ConnectionError("server went away\nsecond line")
        return "Done."

    report = evaluate(RespondingChatModel(respond=respond), ThinkOptions(), tasks=TASKS)
    by_task = {o.task: o for o in report.outcomes}
    assert by_task["book-six-passengers"].error == "ConnectionError: server went away"
    assert by_task["cancel-insured"].error is None and report.errors == 1
    assert report.metrics["turns_with_tools"] == 1 and report.metrics["tool_calls"] == 0
    assert report.warnings and "no tool calls in 1 turn with tools bound" in report.warnings[0]


def test_the_no_tool_calls_warning_needs_bound_tools_and_no_call_at_all():
    assert RunMetrics(turns=3, turns_with_tools=3).never_called_tools
    assert not RunMetrics(turns=3, turns_with_tools=3, tool_calls=1).never_called_tools
    assert RunMetrics(turns=2).no_tool_calls_warning() is None  # no tools were bound


def test_longmt_counts_decisions_made_by_tool_call_by_prose_and_by_fallback():
    prose = LongMTAgent(RespondingChatModel(respond=echo_translator()), policy="auto",
                        page_sentences=2).translate(LINES, src="en", tgt="en")
    totals = prose.totals()
    decided = len(prose.steps) - 1  # the first page has nothing to look up
    assert totals["decisions_by_text"] == decided and totals["decisions_by_tool_call"] == 0
    assert totals["turns_with_tools"] == decided and totals["tool_calls"] == 0

    def caller(messages, tools):
        if messages[-1].type == "tool":
            return "ready"
        return ai("", ("view_summaries", {"pages": [1]}))

    called = LongMTAgent(RespondingChatModel(respond=echo_translator()), policy="auto",
                         policy_model=RespondingChatModel(respond=caller),
                         page_sentences=2).translate(LINES, src="en", tgt="en").totals()
    assert called["decisions_by_tool_call"] == decided and called["tool_calls"] == decided
    rule = LongMTAgent(RespondingChatModel(respond=echo_translator()), policy="all",
                       page_sentences=2).translate(LINES, src="en", tgt="en").totals()
    assert "decisions_by_text" not in rule  # no model decided


def test_translate_warns_when_the_deciding_model_never_calls_a_tool(server, tmp_path):
    doc = tmp_path / "d.en"
    doc.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    done = invoke("translate", str(doc), "--src", "en", "--tgt", "de", "--policy", "auto",
                  "-m", f"openai:{server.url}", "--model-name", "m", "--page-sentences", "3",
                  "--out", str(tmp_path / "out"), "--json")
    assert done.exit_code == 0, done.stderr
    row = json.loads(done.stdout)["auto"]
    # the server's prose is not the no-modules reply: every decision is a fallback
    assert row["fallbacks"] >= 1 and row["tool_calls"] == 0
    assert "auto: the model made no tool calls" in " ".join(done.stderr.split())
    decisions = [r for r in server.requests if r.get("tools")]
    assert decisions and {r["max_tokens"] for r in decisions} == {128}
    others = {r["max_tokens"] for r in server.requests if not r.get("tools")}
    assert others and max(others) <= 2048 and len(others) > 1  # sized to the page (or part)


def test_translate_keeps_the_finished_documents_and_redoes_only_the_failed_one(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(SCENARIO / "data" / "doc0.en", folder / "doc0.en")
    (folder / "doc1.en").write_text("A document the cassette never saw.\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("translate", str(folder), "--src", "en", "--tgt", "zh", "-m", f"replay:{CASSETTE}",
            "--policy", "auto", "--page-sentences", "8", "--out", str(out), "--json")
    done = invoke(*args)
    assert done.exit_code == 1, done.stderr
    assert "1 of 2 documents failed: auto · doc1" in " ".join(done.stderr.split())
    row = json.loads(done.stdout)["auto"]
    assert row["documents"] == 1 and list(row["failed_documents"]) == ["doc1"]
    assert (out / "auto" / "doc0.zh").is_file() and not (out / "auto" / "doc1.zh").exists()
    scores = json.loads((out / "scores.json").read_text())
    assert "doc0" in scores["auto"]["documents"] and "doc1" in scores["auto"]["failed"]
    finished = (out / "auto" / "doc0.done.json").stat().st_mtime_ns
    again = invoke(*args)
    assert again.exit_code == 1
    assert (out / "auto" / "doc0.done.json").stat().st_mtime_ns == finished  # kept, not redone


def test_explore_records_a_failed_task_and_a_resumed_run_redoes_only_it(tmp_path: Path):
    built: list[str] = []

    def make_env(task_id: str, fail: str | None = "b"):
        built.append(task_id)
        if task_id == fail:
            raise TimeoutError("the server did not answer in 60 s")
        env = ChainEnv()
        env.task_id = task_id
        return env

    options = ExploreOptions(simulations=12, seed=0)
    report = explore_tasks(["a", "b", "c"], make_env, options, tmp_path, env_name="chain")
    assert report.failed == {"b": "TimeoutError: the server did not answer in 60 s"}
    assert report.finished == 2 and report.pairs > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == report.failed and summary["finished"] == 2
    built.clear()
    again = explore_tasks(["a", "b", "c"], lambda t: make_env(t, fail=None), options, tmp_path,
                          env_name="chain")
    assert built == ["b"] and again.failed == {} and again.finished == 3
