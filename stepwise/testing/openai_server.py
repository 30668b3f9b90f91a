"""A small OpenAI-protocol server on 127.0.0.1 with scripted answers and injected faults.

Real HTTP, real sockets: the OpenAI-compatible client is tested and benchmarked against
it exactly as it would talk to vLLM. Each request takes the next scripted ``Reply``
(an HTTP error, a delay, garbage, a tool call with broken JSON, ...); with nothing
scripted it echoes the last user message, one choice per requested ``n``.
"""

from __future__ import annotations

import json
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits ~40 ms on the client's delayed ACK
    server: _Server

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
        reply = self.server.next_reply(body)
        if reply.delay:
            time.sleep(reply.delay)
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
            events.append({"tool_calls": [{"index": index, "function": {
                "arguments": call["function"]["arguments"]}}]})
        lines = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                 for delta in events]
        lines.append({**base, "choices": [{"index": 0, "delta": {},
                                           "finish_reason": full["choices"][0]["finish_reason"]}]})
        lines.append({**base, "choices": [], "usage": full["usage"]})
        data = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        self._send_raw(200, data.encode(), "text/event-stream")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def next_reply(self, body: dict) -> Reply:
        with self.lock:
            self.requests.append(body)
            return self.replies.popleft() if self.replies else Reply()


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
        content = reply.content
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
        choices.append({"index": index, "message": message, "finish_reason": finish})
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_tokens = sum(len((c["message"]["content"] or "").split()) for c in choices)
    return {
        "id": f"chatcmpl-{len(prompt)}-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "test-model"),
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


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
