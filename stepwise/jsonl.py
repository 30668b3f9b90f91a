"""Reading JSON and JSONL files: their text as UTF-8, and JSONL lines split on "\n" only.

A file that is not UTF-8 text (a binary file, another encoding) or not JSON is one
``StepwiseError`` naming the file and the line, never a bare ``UnicodeDecodeError``.

``str.splitlines()`` also splits on U+2028, U+2029, U+0085 and other characters that
``json.dumps(..., ensure_ascii=False)`` leaves unescaped inside strings, so a row holding
one would be cut in two and never parse again. Every JSONL reader splits here instead:
``read_jsonl`` is the one reader of JSONL files (datasets, pairs, cassettes, event logs,
metrics), with one error (``file:line: why``), one option, for the logs, to read past a
last line a kill cut off, and one, for a checker, to collect every bad line instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError


def jsonl_lines(text: str) -> list[str]:
    """The lines of JSONL ``text`` (a "\r" before each "\n" dropped, no final empty line)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def decoded(data: bytes, path: str | Path) -> str:
    """``data``, the bytes of ``path``, as UTF-8 text; else an error naming file and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StepwiseError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                            f"column {column}): a binary file, or text in another "
                            "encoding") from None


def read_bytes(path: Path) -> bytes:
    """A file's bytes; a missing or unreadable file is one error naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StepwiseError(f"{path}: no such file") from None
    except OSError as exc:
        raise StepwiseError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def read_text(path: str | Path) -> str:
    """A UTF-8 file's text; a missing, unreadable or non-UTF-8 file is one error naming it."""
    path = Path(path)
    return decoded(read_bytes(path), path)


def read_json(path: str | Path) -> Any:
    """A JSON file's value; a file that is not JSON is one error naming it and the line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise StepwiseError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None


class JsonlError(StepwiseError):
    """A line of a JSONL file that is no JSON object: ``path:line: why``. Its parts are
    kept so a reader can say what the row should have been (a cassette's exchange, a
    search's iteration) without parsing the message."""

    def __init__(self, path: str | Path, line: int, why: str) -> None:
        super().__init__(f"{path}:{line}: {why}")
        self.path, self.line, self.why = Path(path), line, why


def _line_object(raw: bytes, path: str | Path, number: int) -> dict[str, Any]:
    """One JSONL line's object, or a ``JsonlError`` saying why it is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonlError(path, number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                       f"{exc.start + 1})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonlError(path, number, f"not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise JsonlError(path, number, f"not a JSON object (a {type(row).__name__})")
    return row


def read_jsonl(path: str | Path, *,
               on_torn_last_line: Callable[[int], None] | None = None,
               on_bad_line: Callable[[JsonlError], None] | None = None,
               ) -> list[tuple[int, dict]]:
    """The objects of a JSONL file with their line numbers, blank lines skipped; a line that
    is no JSON object is a ``JsonlError`` naming file and line.

    A dataset is read whole or not at all. An append-only log (a cassette, an event log)
    can be cut by a kill in the middle of its last write: pass ``on_torn_last_line`` and a
    last line without its newline that is no JSON object is left out, and the callable is
    given its number (to warn, or to cut it off the file), instead of an error. A checker
    that reports every bad row (the pair checks) passes ``on_bad_line``: each other line
    that is no JSON object is left out and its error given to it, and reading goes on.
    """
    path = Path(path)
    data = read_bytes(path)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rows: list[tuple[int, dict]] = []
    for number, raw in enumerate(lines, 1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            rows.append((number, _line_object(raw, path, number)))
        except JsonlError as exc:
            torn = number == len(lines) and not data.endswith(b"\n")
            if torn and on_torn_last_line is not None:
                on_torn_last_line(number)
            elif on_bad_line is not None:
                on_bad_line(exc)
            else:
                raise
    return rows
