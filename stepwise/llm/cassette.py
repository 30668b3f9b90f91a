"""Cassettes: recorded model exchanges, keyed by the canonical hash of each request.

A cassette is a JSONL file: a header line, then one line per exchange
``{"key", "request", "result"}``. The same request may appear several times (a sampled
call made twice); replay answers them in recorded order and repeats the last one.

Recording appends: the first exchange replaces any old cassette atomically (header and
that line, in a temporary file renamed into place), then each exchange is one appended
line, flushed and synced, so recording N calls writes each line once. A recording killed
mid-write can only tear the last line; ``Cassette.load`` drops a torn last line with a
warning that names it, and replays the complete exchanges before it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult

from stepwise.errors import CassetteError, StepwiseError
from stepwise.files import write_atomic
from stepwise.jsonl import JsonlError, read_jsonl

FORMAT_VERSION = 1

log = logging.getLogger(__name__)


def result_to_dict(result: ChatResult) -> dict:
    return {
        "generations": [
            {"message": message_to_dict(g.message), "generation_info": g.generation_info}
            for g in result.generations
        ],
        "llm_output": result.llm_output,
    }


def result_from_dict(data: dict) -> ChatResult:
    messages = messages_from_dict([g["message"] for g in data["generations"]])
    return ChatResult(
        generations=[
            ChatGeneration(message=m, generation_info=g.get("generation_info"))
            for m, g in zip(messages, data["generations"], strict=True)
        ],
        llm_output=data.get("llm_output"),
    )


class Cassette:
    """Exchanges in recorded order, grouped by request key for lookup."""

    def __init__(self, path: str | Path, header: dict | None = None) -> None:
        self.path = Path(path)
        self.header = header or {"stepwise_cassette": FORMAT_VERSION}
        self.lines: list[str] = []  # serialized exchanges, in recorded order
        self.by_key: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._on_disk = False  # whether this object has written the file (append goes after)

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read a cassette; a missing or corrupt file is a one-line ``CassetteError``."""
        path = Path(path)
        if not path.is_file():
            raise CassetteError(f"cassette not found: {path}")
        torn: list[int] = []
        try:
            rows = read_jsonl(path, on_torn_last_line=torn.append)
        except JsonlError as exc:
            raise CassetteError(f"{path}:{exc.line}: corrupt cassette line ({exc.why})") from None
        except StepwiseError as exc:  # unreadable: the reason, naming the file
            raise CassetteError(str(exc)) from None
        if not rows:
            raise CassetteError(f"cassette {path} is empty")
        number, header = rows[0]
        if "stepwise_cassette" not in header:
            raise CassetteError(f"{path}:{number}: not a stepwise cassette (no "
                                "'stepwise_cassette' header)")
        if header["stepwise_cassette"] != FORMAT_VERSION:
            raise CassetteError(f"{path}:{number}: cassette format "
                                f"{header['stepwise_cassette']!r:.40}, not {FORMAT_VERSION}: "
                                "record it again with this version")
        if torn:
            log.warning("%s:%d: the last line is cut off (the recording stopped mid-write); "
                        "replaying the %d exchanges before it", path, torn[0], len(rows) - 1)
        cassette = cls(path, header)
        for number, row in rows[1:]:
            cls._check_exchange(path, number, row)
            cassette.lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
            cassette.by_key.setdefault(row["key"], []).append(row)
        return cassette

    @staticmethod
    def _check_exchange(path: Path, number: int, row: dict) -> None:
        """Refuse an exchange that replay could not answer from, naming its line: a
        malformed one must stop its own scenario, not surface later as a raw KeyError."""
        if not {"key", "request", "result"} <= row.keys():
            raise CassetteError(f"{path}:{number}: exchange lacks key, request or result")
        request = row["request"]
        if not isinstance(row["key"], str):
            raise CassetteError(f"{path}:{number}: malformed exchange (key is not a string)")
        if not (isinstance(request, dict) and isinstance(request.get("params"), dict)
                and all(isinstance(request.get(part), list)
                        and all(isinstance(item, dict) for item in request[part])
                        for part in ("messages", "tools"))):
            raise CassetteError(f"{path}:{number}: malformed exchange (request needs messages, "
                                "tools and params)")
        try:
            result = result_from_dict(row["result"])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise CassetteError(f"{path}:{number}: malformed exchange result ({why})") from None
        if not result.generations:  # every caller of a replayed answer reads generations[0]
            raise CassetteError(f"{path}:{number}: malformed exchange result (no generations)")

    def add(self, key: str, request: dict, result: ChatResult) -> None:
        """Keep an exchange in memory (``save`` writes them all)."""
        with self._lock:
            self._remember(key, request, result)

    def append(self, key: str, request: dict, result: ChatResult) -> None:
        """Keep an exchange and write only its line: recording stays O(calls), not O(calls²).

        The first write replaces the file with the header and everything kept so far
        (atomically); later ones append one line each, flushed and synced before the call
        returns, so a kill tears at most that line. After a failed append (a full disk)
        the next call rewrites the whole file, so a torn line never stays in the middle.
        """
        with self._lock:
            line = self._remember(key, request, result)
            if not self._on_disk:
                write_atomic(self.path, self._body())
                self._on_disk = True
                return
            try:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                self._on_disk = False
                raise

    def _remember(self, key: str, request: dict, result: ChatResult) -> str:
        """Add an exchange to the in-memory lines and index (the lock held); its line."""
        row = {"key": key, "request": request, "result": result_to_dict(result)}
        line = json.dumps(row, ensure_ascii=False, sort_keys=True)
        self.lines.append(line)
        self.by_key.setdefault(key, []).append(row)
        return line

    def save(self) -> None:
        """Write the whole cassette atomically (temporary file, fsync, rename)."""
        with self._lock:
            write_atomic(self.path, self._body())
            self._on_disk = True

    def _body(self) -> str:
        return "\n".join([json.dumps(self.header, sort_keys=True), *self.lines]) + "\n"

    def requests(self) -> list[dict]:
        """One recorded request per key."""
        return [rows[0]["request"] for rows in self.by_key.values()]


def _short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_text_difference(a: str, b: str) -> str:
    index = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, index - 20)
    return f"at character {index}: {_short(a[start:])!r} vs recorded {_short(b[start:])!r}"


def describe_difference(request: dict, recorded: dict) -> str:
    """The first thing that differs between a request and a recorded one, in words."""
    ours, theirs = request["messages"], recorded["messages"]
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a == b:
            continue
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                if isinstance(a.get(field), str) and isinstance(b.get(field), str):
                    detail = _first_text_difference(a[field], b[field])
                else:
                    detail = f"{_short(a.get(field))} vs recorded {_short(b.get(field))}"
                return f"message {index} ({a.get('role')}) {field} differs {detail}"
    if len(ours) != len(theirs):
        return f"{len(ours)} messages vs {len(theirs)} recorded"
    if request["tools"] != recorded["tools"]:
        names = [t.get("function", {}).get("name") for t in request["tools"]]
        recorded_names = [t.get("function", {}).get("name") for t in recorded["tools"]]
        if names != recorded_names:
            return f"tools {names} vs recorded {recorded_names}"
        return "tool schemas differ (same names, different parameters or descriptions)"
    params, recorded_params = request["params"], recorded["params"]
    diffs = [
        f"{key}={_short(params.get(key))} vs recorded {_short(recorded_params.get(key))}"
        for key in sorted(set(params) | set(recorded_params))
        if params.get(key) != recorded_params.get(key)
    ]
    return "parameters differ: " + "; ".join(diffs) if diffs else "nothing (hash collision?)"


def closest_request(request: dict, recorded: list[dict]) -> dict | None:
    """The recorded request sharing the longest message prefix, then tools, then params."""

    def likeness(other: dict) -> tuple:
        prefix = 0
        for a, b in zip(request["messages"], other["messages"]):
            if a != b:
                break
            prefix += 1
        return (
            prefix,
            request["tools"] == other["tools"],
            request["params"] == other["params"],
            -abs(len(request["messages"]) - len(other["messages"])),
        )

    return max(recorded, key=likeness, default=None)
