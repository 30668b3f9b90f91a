"""One bad model answer never aborts a whole command.

A fault-injecting OpenAI-compatible server (real HTTP) answers some requests with an HTTP
error, a truncated or non-JSON 200 body or choices that are not objects: the client asks
again within its retries; past them the one task (a document, a task trial) fails,
is counted and shown, and the others finish and are kept.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from stepwise.agents.longmt import LongMTAgent
from stepwise.agents.longmt.page_steps import PageStepFailed
from stepwise.agents.longmt.prompts import ENTITIES_HEAD, SUMMARY_HEAD, TRANSLATE_HEAD, blocks
from stepwise.cli import app
from stepwise.errors import ModelBackendError
from stepwise.llm import OpenAICompatChatModel
from stepwise.testing.responding import RespondingChatModel

# (status, content type, body) of a bad answer
TRUNCATED = (200, "application/json", '{"choices": [{"message": {"content": "trunc')
HTML = (200, "text/html", "<html><body>502 Bad Gateway</body></html>")
NOT_OBJECTS = (200, "application/json", json.dumps({"choices": [5]}))
UNAVAILABLE = (503, "application/json", json.dumps({"error": {"message": "busy"}}))

Fault = tuple[int, str, str]


def completion(text: str, index: int = 0) -> dict:
    """A chat.completion of one answer; its id is the request's index (ids must differ: the
    think agent's history merges messages by id)."""
    return {"id": f"chatcmpl-{index}", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


class _Faulty(BaseHTTPRequestHandler):
    """Answers each request with ``server.fault(body, index)`` when that gives a fault,
    else with ``server.respond(body)``'s text; every answer allows a retry in 1 ms."""

    protocol_version = "HTTP/1.1"
    server: FaultyServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.server.lock:
            index = len(self.server.requests)
            self.server.requests.append(body)
        fault = self.server.fault(body, index)
        status, ctype, text = fault or (200, "application/json",
                                        json.dumps(completion(self.server.respond(body), index)))
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("retry-after-ms", "1")
        self.end_headers()
        self.wfile.write(data)


class FaultyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, respond: Callable[[dict], str],
                 fault: Callable[[dict, int], Fault | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Faulty)
        self.respond, self.fault = respond, fault
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture()
def faulty() -> Iterator[Callable[..., FaultyServer]]:
    servers: list[FaultyServer] = []

    def start(respond: Callable[[dict], str], fault: Callable[[dict, int], Fault | None]
              ) -> FaultyServer:
        server = FaultyServer(respond, fault)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def scripted(*faults: Fault) -> Callable[[dict, int], Fault | None]:
    """The given faults for the first requests, in order; then good answers."""
    return lambda body, index: faults[index] if index < len(faults) else None


def user_text(body: dict) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")


# -- the client asks again -----------------------------------------------------------------


def test_a_truncated_non_json_or_odd_answer_is_asked_again_then_used(faulty):
    server = faulty(lambda body: "fine", scripted(TRUNCATED, HTML, NOT_OBJECTS))
    model = OpenAICompatChatModel(base_url=server.url, model="m", max_retries=3)
    assert model.invoke("x").content == "fine"
    assert len(server.requests) == 4
    again = faulty(lambda body: "fine async", scripted(TRUNCATED))
    model = OpenAICompatChatModel(base_url=again.url, model="m", max_retries=1)
    assert asyncio.run(model.ainvoke("x")).content == "fine async"
    assert len(again.requests) == 2


def test_answers_unusable_past_the_retries_are_the_backends_error(faulty):
    server = faulty(lambda body: "never sent", lambda body, index: TRUNCATED)
    model = OpenAICompatChatModel(base_url=server.url, model="m", max_retries=2)
    with pytest.raises(ModelBackendError, match=r"unusable answer after 2 retries: not JSON"
                       ) as caught:
        model.invoke("x")
    assert len(server.requests) == 3 and len(str(caught.value).splitlines()) == 1


# -- LongMT: a failed page step is its document's failure ------------------------------------


def translator(body: dict) -> str:
    """Numbered translations, a summary, no entities: what the LongMT prompts ask for."""
    prompt = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    if prompt.startswith(TRANSLATE_HEAD):
        return "\n".join(f"{i}. T:{line}" for i, line in enumerate(blocks(prompt)["page"], 1))
    if prompt.startswith(SUMMARY_HEAD):
        return "A summary."
    if prompt.startswith(ENTITIES_HEAD):
        return "[]"
    return "no modules"


def test_translate_over_documents_with_bad_answers_keeps_the_good_ones(faulty, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(4):
        lines = [f"Document {n} line {i} is plain." for i in range(4)]
        if n == 2:
            lines[2] = "Zed breaks every answer."  # the second page of d2 is never answered
        (folder / f"d{n}.en").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def fault(body: dict, index: int) -> Fault | None:
        if "Zed" in user_text(body) and user_text(body).startswith(TRANSLATE_HEAD):
            return TRUNCATED
        return (TRUNCATED, HTML, NOT_OBJECTS, UNAVAILABLE)[index // 5 % 4] if index % 5 == 4 \
            else None  # every fifth request, once: asked again

    server = faulty(translator, fault)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, [
        "translate", str(folder), "--src", "en", "--tgt", "de", "-m", f"openai:{server.url}",
        "--model-name", "m", "--page-sentences", "2", "--out", str(out), "--json"])
    assert done.exit_code == 1, done.stderr
    row = json.loads(done.stdout)["none"]
    assert row["documents"] == 3 and list(row["failed_documents"]) == ["d2"]
    assert row["failed_documents"]["d2"].startswith("page 2 of 2, translate: model server ")
    assert "unusable answer after 2 retries: not JSON" in row["failed_documents"]["d2"]
    assert "1 of 4 documents failed: none · d2" in " ".join(done.stderr.split())
    for n in (0, 1, 3):
        assert (out / "none" / f"d{n}.de").read_text(encoding="utf-8").splitlines() == [
            f"T:Document {n} line {i} is plain." for i in range(4)]
        assert (out / "none" / f"d{n}.done.json").is_file()
    assert not (out / "none" / "d2.done.json").exists() and not (out / "none" / "d2.de").exists()
    trace = [json.loads(line) for line in
             (out / "none" / "d2.failed.trace.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [step["page"] for step in trace] == [0, 1] and "failed" not in trace[0]
    assert trace[1]["failed"]["call"] == "translate" and trace[1]["translation"] == []
    assert sum(index % 5 == 4 for index in range(len(server.requests))) >= 4  # faults were met


def test_a_failed_memory_update_names_its_page_and_call_and_keeps_the_trace():
    def respond(messages, tools):
        prompt = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
        if prompt.startswith(SUMMARY_HEAD) and "Zed" in prompt:
            raise ModelBackendError("model server X: HTTP 503 after 2 retries: busy")
        return translator({"messages": [{"role": "user", "content": prompt}]})

    agent = LongMTAgent(RespondingChatModel(respond=respond), page_sentences=2)
    with pytest.raises(PageStepFailed, match=r"^page 2 of 2, update_summaries: model server X: "
                                             r"HTTP 503") as caught:
        agent.translate(["Plain one.", "Plain two.", "Zed three.", "Plain four."], src="en",
                        tgt="en")
    assert caught.value.page == 1 and caught.value.call == "update_summaries"
    first, failed = caught.value.steps
    assert first["page"] == 0 and len(first["updates"]) == 2
    assert failed["translation"] == ["T:Zed three.", "T:Plain four."] and failed["updates"] == []
    assert failed["failed"] == {"call": "update_summaries",
                                "error": "model server X: HTTP 503 after 2 retries: busy"}


def test_a_bug_in_stepwise_itself_is_no_documents_failure_and_stops_the_run(
        monkeypatch, tmp_path):
    def respond(messages, tools):
        raise TypeError("a bug")

    monkeypatch.setattr("stepwise.cli.translate.model_from_uri",
                        lambda *args, **kwargs: RespondingChatModel(respond=respond))
    doc = tmp_path / "d.en"
    doc.write_text("One.\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["translate", str(doc), "--src", "en", "--tgt", "de",
                                    "-m", "openai:http://127.0.0.1:9/v1", "--out",
                                    str(tmp_path / "out")])
    assert done.exit_code == 2 and "error: TypeError: a bug" in done.stderr
    assert "failed:" not in done.stderr


# -- think: the thread id comes first -------------------------------------------------------


def tool_call(name: str, arguments: dict) -> str:
    """A completion body whose answer is one tool call."""
    body = completion("")
    body["choices"][0]["message"]["tool_calls"] = [{
        "id": "call_1", "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)}}]
    body["choices"][0]["finish_reason"] = "tool_calls"
    return json.dumps(body)


def test_think_prints_its_thread_id_and_resume_command_before_a_failing_step(faulty, tmp_path):
    broken = [True]

    def fault(body: dict, index: int) -> Fault | None:
        if index == 0:  # the first turn thinks; every later one fails while broken
            return 200, "application/json", tool_call("think", {"thought": "first, a plan"})
        return UNAVAILABLE if broken[0] else None

    server = faulty(lambda body: "All done.", fault)
    checkpoints = tmp_path / "runs.sqlite"
    done = CliRunner().invoke(app, ["think", "plan a trip", "-m", f"openai:{server.url}",
                                    "--model-name", "m", "--checkpoints", str(checkpoints)])
    assert done.exit_code == 2 and "HTTP 503 after 2 retries" in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("thread ") and "if the run stops early, resume with: " in first
    thread = first.split()[1].rstrip(";")
    command = first.split("resume with: ")[1]
    assert command == (f"stepwise think --resume {thread} --model openai:{server.url} "
                       f"--model-name m --checkpoints {checkpoints}")
    broken[0] = False
    resumed = CliRunner().invoke(app, [*command.split()[1:], "--json"])
    assert resumed.exit_code == 0, resumed.stderr
    run = json.loads(resumed.stdout)
    assert run["thread_id"] == thread and run["status"] == "answered"
    assert run["answer"] == "All done." and run["metrics"]["think_calls"] == 1


# -- think --eval: one failed task, refusals apart --------------------------------------------

EVAL_TASKS = ["cancel-insured", "book-six-passengers", "change-flight-economy"]  # the middle
# one is a refusal: its policy says no, so answering in words passes it


def test_think_eval_counts_one_failed_task_and_reports_refusals_apart(faulty):
    def fault(body: dict, index: int) -> Fault | None:
        request = user_text(body)
        if "cancel" in request.lower():  # the first task's answers are never usable
            return HTML
        return TRUNCATED if index % 2 else None  # the others' every other request, once

    server = faulty(lambda body: "I cannot do that.", fault)
    done = CliRunner().invoke(app, ["think", "--eval", "--world", "airline", "--tasks",
                                    ",".join(EVAL_TASKS), "-m", f"openai:{server.url}",
                                    "--model-name", "m", "--json"])
    assert done.exit_code == 1, done.stderr
    report = json.loads(done.stdout)
    by_task = {o["task"]: o for o in report["outcomes"]}
    assert by_task["cancel-insured"]["status"] == "error" and report["errors"] == 1
    assert "unusable answer after 2 retries: not JSON" in by_task["cancel-insured"]["error"]
    assert by_task["book-six-passengers"]["status"] == "answered"  # retried past its bad bodies
    assert by_task["book-six-passengers"]["success"] and by_task["book-six-passengers"]["kind"] \
        == "refusal"
    assert not by_task["change-flight-economy"]["success"]  # words change nothing
    assert report["success_rate"] == pytest.approx(1 / 3)
    assert report["by_kind"] == {
        "change": {"tasks": 2, "trials": 2, "success_rate": 0.0},
        "refusal": {"tasks": 1, "trials": 1, "success_rate": 1.0}}
    assert any("every success is on a refusal task" in w for w in report["warnings"])
    assert "1 of 3 task trials failed: cancel-insured (trial 0)" in " ".join(done.stderr.split())


def test_think_eval_table_shows_refusals_and_changes_apart(faulty):
    server = faulty(lambda body: "I cannot do that.", lambda body, index: None)
    done = CliRunner().invoke(app, ["think", "--eval", "--world", "airline", "--tasks",
                                    ",".join(EVAL_TASKS), "-m", f"openai:{server.url}",
                                    "--model-name", "m"])
    assert done.exit_code == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "must change something: 0.000" in text and "refusals: 1.000" in text
    assert ("success rate 0.333 (must change something 0.000 over 2 tasks, refusals 1.000 over "
            "1 task)") in text


# -- a local model's context ---------------------------------------------------------------


def test_a_local_model_answers_within_its_context_without_a_transformers_warning(
        tiny_path, capfd):
    from stepwise.llm.hf import HFChatModel

    model = HFChatModel(model_path=str(tiny_path), max_tokens=200)
    model._ensure_loaded()
    model.hf_model.config.max_position_embeddings = 96  # a small context, as a real model has
    model.tokenizer.model_max_length = 96
    answer = model.invoke("Hello there, how are you today?")
    used = len(answer.response_metadata["prompt_token_ids"]) + \
        len(answer.response_metadata["completion_token_ids"])
    assert used <= 96
    with pytest.raises(ModelBackendError, match=r"the prompt is \d+ tokens, the model's "
                                                r"context 96: no room to answer"):
        model.invoke("word " * 200)
    printed = capfd.readouterr().err
    assert "friendly reminder" not in printed and "Token indices" not in printed
