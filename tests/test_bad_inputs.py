"""Inputs that used to give silently wrong results or raw errors end in one clear line."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.documents.sources import file_name, load_documents
from stepwise.errors import ModelBackendError, ScenarioError, StepwiseError
from stepwise.llm import OpenAICompatChatModel
from stepwise.scenario.loader import load_scenario
from stepwise.scenario.schema import Expectation

from .conftest import REPO, json_objects

runner = CliRunner()


def dataset(tmp_path, *ids: str):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": i, "src": "Hello.", "ref": "你好。", "src_lang": "en",
                                        "tgt_lang": "zh"}) + "\n" for i in ids), "utf-8")
    return path


# -- 6. duplicate or colliding document ids are refused -------------------------------------


REFUSED_IDS = [
    (("a", "b", "a"), r"data\.jsonl: line 1 and line 3 have the same id 'a'"),
    (("x", "a/b", "a_b"), r"line 2 and line 3 have ids 'a/b' and 'a_b', .* file name 'a_b'"),
    (("ok", "../up"), r"data\.jsonl: line 2: id '\.\./up' has a '\.\.' part"),
    (("/etc/x",), r"data\.jsonl: line 1: id '/etc/x' starts with a slash"),
    (("a\0b",), r"data\.jsonl: line 1: id 'a\\x00b' holds a NUL character"),
]


def test_duplicate_colliding_and_escaping_ids_are_refused(tmp_path):
    for ids, message in REFUSED_IDS:
        with pytest.raises(StepwiseError, match=message) as caught:
            load_documents(dataset(tmp_path, *ids))
        assert len(str(caught.value).splitlines()) == 1
    kept = ["a", "b", "a.b", "a/b", "doc 1"]
    assert [d.id for d in load_documents(dataset(tmp_path, *kept))] == kept
    from stepwise.search.run import safe_name  # how explore names tree files: the check agrees

    assert all(file_name(i) == safe_name(i) for i in (*kept, "a_b", "é-ü_x.y", "a:b"))


# -- 8. odd HTTP 200 answers are the backend's error ----------------------------------------


class _Answers(BaseHTTPRequestHandler):
    """Answers every request with the next (content type, body) of the server's list."""

    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype, body = self.server.answers.pop(0)  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ODD_ANSWERS = {
    "a choice that is not an object": (
        "application/json", json.dumps({"choices": [5]}), "choice 0 is a number, not an object"),
    "an HTML page": ("text/html", "<html><body>502 Bad Gateway</body></html>", "not JSON"),
    "integer content": ("application/json", json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": 7}, "finish_reason": "stop"}]}),
        "content is a number, not a string"),
    "a JSON array": ("application/json", "[1, 2]", "an array, not a JSON object"),
    "tool calls that are not a list": ("application/json", json.dumps(
        {"choices": [{"message": {"content": "x", "tool_calls": 3}}]}), "tool_calls is not a list"),
}


@pytest.mark.parametrize("answer", ODD_ANSWERS.values(), ids=ODD_ANSWERS.keys())
def test_an_odd_http_200_answer_is_a_model_server_error(answer):
    ctype, body, problem = answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.answers = [(ctype, body)]  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = OpenAICompatChatModel(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                                      model="m", max_retries=0)
        with pytest.raises(ModelBackendError, match="unusable answer") as caught:
            model.invoke("x")
    finally:
        server.shutdown()
        server.server_close()
    assert problem in str(caught.value) and len(str(caught.value).splitlines()) == 1


# -- 11. an expected value is bounded ---------------------------------------------------------

ALIAS_BOMB = "  - path: output.content\n    equals:\n" + "\n".join(
    ['      - &l0 ["lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"      - &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
)  # the last level stands for 6 * 9**9 (2 billion) strings


@pytest.mark.parametrize(("expect", "message"), [
    (ALIAS_BOMB, r"s\.yaml:\d+: expect\[0\]\.equals: the expected value is larger than"),
    ("  - path: output.content\n    equals: &deep [*deep]",
     r"s\.yaml:\d+: expect\[0\]\.equals: the expected value nests deeper than 20 levels"),
    (f"  - path: output.content\n    contains: {'x' * 40_000}",
     r"s\.yaml:\d+: expect\[0\]\.contains: the expected value is larger than"),
], ids=["alias bomb", "cycle", "long string"])
def test_an_unbounded_expected_value_is_one_validation_error(tmp_path, expect, message):
    text = (REPO / "scenarios" / "chat-echo.yaml").read_text("utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(text.split("expect:")[0] + "expect:\n" + expect + "\n", "utf-8")
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(path)
    assert len(str(caught.value).splitlines()) == 1
    big_but_allowed = Expectation(path="p", equals=[list(range(100))] * 20)
    assert big_but_allowed.describe().startswith("p equals [[0, 1,")
    assert len(big_but_allowed.describe()) < 300  # a table row, not the whole value


# -- 12. a malformed cassette is its scenario's FAIL row ------------------------------------


def test_replay_dir_shows_each_malformed_cassette_as_one_fail_row(tmp_path):
    folder = tmp_path / "scenarios"
    (folder / "cassettes").mkdir(parents=True)
    scenario = (REPO / "scenarios" / "chat-echo.yaml").read_text("utf-8")
    good = (REPO / "scenarios" / "cassettes" / "chat-echo.jsonl").read_text("utf-8")
    header, exchange = good.splitlines()
    no_generations = json.loads(exchange)
    no_generations["result"]["generations"] = []
    no_key = json.loads(exchange)
    del no_key["key"]
    broken = {
        "bad-json": (f"{header}\n{exchange[:40]}\n", "bad-json.jsonl:2: corrupt cassette line"),
        "no-key": (f"{header}\n{json.dumps(no_key)}\n", "no-key.jsonl:2: exchange lacks key"),
        "old-header": ('{"stepwise_cassette": 0}\n' + exchange + "\n",
                       "old-header.jsonl:1: cassette format 0, not 1"),
        "no-generations": (f"{header}\n{json.dumps(no_generations)}\n",
                           "no-generations.jsonl:2: malformed exchange result (no generations)"),
    }
    (folder / "a-good.yaml").write_text(scenario, "utf-8")
    (folder / "cassettes" / "chat-echo.jsonl").write_text(good, "utf-8")
    for name, (cassette, _) in broken.items():
        (folder / f"b-{name}.yaml").write_text(scenario.replace("name: chat-echo", f"name: {name}")
                                               .replace("chat-echo.jsonl", f"{name}.jsonl"), "utf-8")
        (folder / "cassettes" / f"{name}.jsonl").write_text(cassette, "utf-8")
    shutil.copy(folder / "a-good.yaml", folder / "c-good.yaml")

    result = runner.invoke(app, ["replay", str(folder), "--json"])
    assert result.exit_code == 1, result.output
    rows = json_objects(result.output)
    assert [(r["name"], r["passed"]) for r in rows] == [
        ("chat-echo", True), *((name, False) for name in sorted(broken)), ("chat-echo", True)]
    for row in rows[1:-1]:
        assert broken[row["name"]][1] in row["error"], row["error"]
        assert len(row["error"].splitlines()) == 1
