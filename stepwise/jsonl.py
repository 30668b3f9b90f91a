"""Splitting JSONL text into its lines, on "\n" only.

``str.splitlines()`` also splits on U+2028, U+2029, U+0085 and other characters that
``json.dumps(..., ensure_ascii=False)`` leaves unescaped inside strings, so a row holding
one would be cut in two and never parse again. Every JSONL reader splits here instead.
"""

from __future__ import annotations


def jsonl_lines(text: str) -> list[str]:
    """The lines of JSONL ``text`` (a "\r" before each "\n" dropped, no final empty line)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
