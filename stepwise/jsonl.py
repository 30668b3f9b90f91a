"""Reading JSON and JSONL files: their text as UTF-8, and JSONL lines split on "\n" only.

A file that is not UTF-8 text (a binary file, another encoding) or not JSON is one
``StepwiseError`` naming the file and the line, never a bare ``UnicodeDecodeError``.

``str.splitlines()`` also splits on U+2028, U+2029, U+0085 and other characters that
``json.dumps(..., ensure_ascii=False)`` leaves unescaped inside strings, so a row holding
one would be cut in two and never parse again. Every JSONL reader splits here instead.
"""

from __future__ import annotations

import json
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


def read_text(path: str | Path) -> str:
    """A UTF-8 file's text; a missing, unreadable or non-UTF-8 file is one error naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StepwiseError(f"{path}: no such file") from None
    except OSError as exc:
        raise StepwiseError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return decoded(data, path)


def read_json(path: str | Path) -> Any:
    """A JSON file's value; a file that is not JSON is one error naming it and the line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise StepwiseError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
