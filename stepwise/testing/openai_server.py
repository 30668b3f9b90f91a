"""A small OpenAI-protocol server on 127.0.0.1 with scripted answers and injected faults.

Real HTTP, real sockets: the OpenAI-compatible client is tested and benchmarked against
it exactly as it would talk to vLLM. Each request takes the next scripted ``Reply``
(an HTTP error, a delay, garbage, a tool call with broken JSON, an empty answer, ...);
with nothing scripted it echoes the last user message, one choice per requested ``n``.

Like vLLM it answers ``logprobs`` and ``return_token_ids`` when asked (a token is a word
here), and like a server that aborts generation when its client hangs up, a delayed
answer notices a closed connection and records it in ``hangups``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    """One scripted answer. ``status`` != 200 or ``body`` makes it a fault."""

    content: str | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # {"name", "arguments"}
    reasoning: str | None = None
    status: int = 200
    delay: float = 0.0
    body: str | None = None
    retry_after_ms: int | None = 5
    finish_reason: str | None = None
    contents: list[str] | None = None  # one content per choice, for n > 1
    token_ids: bool = True  # False: ignore return_token_ids, as llama.cpp does
    chunk_delay: float = 0.0  # seconds between streamed chunks: a slow stream, never a stall
    repeat_call_names: bool = False  # every streamed tool-call delta names the call again
    cut_after: int | None = None  # stream only this many events, then end (a failed server)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits ~40 ms on the client's delayed ACK
    server: _Server
    index: int  # of the request being answered, in the server's ``requests``

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        self.index, reply = self.server.next_reply(body)
        if reply.delay and not self._wait(reply.delay):
            self._hung_up()
            return
        if reply.body is not None:
            self._send_raw(reply.status, reply.body.encode(), "application/json")
        elif reply.status != 200:
            headers = {"retry-after-ms": str(reply.retry_after_ms)} if reply.retry_after_ms else {}
            self._send(reply.status, {"error": {"message": f"injected HTTP {reply.status}"}},
                       headers)
        elif body.get("stream"):
            self._stream(body, reply)
        else:
            self._send(200, completion(body, reply))

    def _hung_up(self) -> None:
        with self.server.lock:
            self.server.hangups.append(self.index)
        self.close_connection = True

    def _wait(self, seconds: float) -> bool:
        """Stay busy for ``seconds`` like a generating model; False once the client hangs up."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.02))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                except (ConnectionResetError, OSError):
                    return False
                time.sleep(max(0.0, deadline - time.monotonic()))  # data, not a hang-up
                return True
        return True

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _stream(self, body: dict, reply: Reply) -> None:
        full = completion(body, reply)
        message = full["choices"][0]["message"]
        events: list[dict] = []
        base = {"id": full["id"], "object": "chat.completion.chunk", "model": full["model"]}
        if message.get("reasoning_content"):
            events.append({"reasoning_content": message["reasoning_content"]})
        for word in (message.get("content") or "").split(" "):
            events.append({"content": word + " "})
        for index, call in enumerate(message.get("tool_calls") or []):
            events.append({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"],
                                                        "arguments": ""}}]})
            again = ({"id": call["id"], "type": "function"} if reply.repeat_call_names else {})
            named = {"name": call["function"]["name"]} if reply.repeat_call_names else {}
            events.append({"tool_calls": [{"index": index, **again, "function": {
                **named, "arguments": call["function"]["arguments"]}}]})
        lines = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                 for delta in events]
        _stream_token_data(body, reply, lines, full)
        lines.append({**base, "choices": [{"index": 0, "delta": {},
                                           "finish_reason": full["choices"][0]["finish_reason"]}]})
        lines.append({**base, "choices": [], "usage": full["usage"]})
        events_text = [f"data: {json.dumps(line)}\n\n" for line in lines] + ["data: [DONE]\n\n"]
        if reply.cut_after is not None:
            events_text = events_text[:reply.cut_after]
        if reply.chunk_delay:
            self._trickle(events_text, reply.chunk_delay)
        else:
            self._send_raw(200, "".join(events_text).encode(), "text/event-stream")

    def _trickle(self, events: list[str], delay: float) -> None:
        """Send a stream one event at a time; stop, as vLLM does, when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()
        self.close_connection = True
        try:
            for number, event in enumerate(events):
                if number and not self._wait(delay):
                    self._hung_up()
                    return
                self.wfile.write(event.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self._hung_up()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []
        self.hangups: list[int] = []
        self.lock = threading.Lock()

    def next_reply(self, body: dict) -> tuple[int, Reply]:
        with self.lock:
            self.requests.append(body)
            return len(self.requests) - 1, self.replies.popleft() if self.replies else Reply()


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def completion(body: dict, reply: Reply) -> dict:
    """The chat.completion object the server answers ``body`` with."""
    n = int(body.get("n") or 1)
    prompt = _last_user_text(body)
    choices = []
    for index in range(n):
        content = reply.contents[index] if reply.contents else reply.content
        if content is None and not reply.tool_calls:
            content = f"echo: {prompt}" if n == 1 else f"echo[{index}]: {prompt}"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{index}_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for i, c in enumerate(reply.tool_calls)
            ]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        choice = {"index": index, "message": message, "finish_reason": finish}
        words = (content or "").split()
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": w, "logprob": token_logprob(i), "bytes": list(w.encode()),
                 "top_logprobs": []} for i, w in enumerate(words)]}
        if body.get("return_token_ids") and reply.token_ids:
            choice["token_ids"] = [token_id(w) for w in words]
        choices.append(choice)
    prompt_words = [w for m in body.get("messages", []) for w in str(m.get("content") or "").split()]
    completion_tokens = sum(len((c["message"]["content"] or "").split()) for c in choices)
    answer: dict[str, Any] = {
        "id": f"chatcmpl-{len(prompt)}-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "test-model"),
        "choices": choices,
        "usage": {"prompt_tokens": len(prompt_words), "completion_tokens": completion_tokens,
                  "total_tokens": len(prompt_words) + completion_tokens},
    }
    if body.get("return_token_ids") and reply.token_ids:
        answer["prompt_token_ids"] = [token_id(w) for w in prompt_words]
    return answer


def token_id(word: str) -> int:
    """The fake tokenizer's id of a word (a token is a word): stable across runs."""
    return sum(word.encode()) % 50_000


def token_logprob(position: int) -> float:
    """The fake model's logprob of the completion's ``position``-th token."""
    return -0.25 * (position + 1)


def _stream_token_data(body: dict, reply: Reply, lines: list[dict], full: dict) -> None:
    """Token data on streamed chunks as vLLM sends it: prompt ids on the first chunk, ids and
    logprobs on each content chunk (one word each here)."""
    if body.get("return_token_ids") and reply.token_ids and lines:
        lines[0]["prompt_token_ids"] = full["prompt_token_ids"]
    position = 0
    for line in lines:
        choice = line["choices"][0]
        words = (choice["delta"].get("content") or "").split()
        if not words:
            continue
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": w, "logprob": token_logprob(position + i), "top_logprobs": []}
                for i, w in enumerate(words)]}
        if body.get("return_token_ids") and reply.token_ids:
            choice["token_ids"] = [token_id(w) for w in words]
        position += len(words)


class OpenAITestServer:
    """``with OpenAITestServer() as server:`` then point a client at ``server.url``."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict]:
        """The JSON bodies received, in order."""
        return self._server.requests

    @property
    def hangups(self) -> list[int]:
        """Indices (into ``requests``) of delayed requests whose client closed the connection
        before the answer was ready."""
        with self._server.lock:
            return list(self._server.hangups)

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        with self._server.lock:
            self._server.replies.extend(replies)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
