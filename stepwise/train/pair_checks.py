"""Every preference pair checked before training, with the reason each bad one is dropped.

A trainer fed a broken row either crashes deep inside tokenisation or, worse, silently
trains on something else (an empty completion, a prompt cut where the template
re-renders history). So rows are checked here, one reason per dropped row:

- format: a JSON object with ``prompt`` (messages ending in a user or tool turn) and
  ``chosen`` / ``rejected`` (non-empty, starting with an assistant turn), different;
- under the model's chat template, rendered as the trainer will see the row (tool calls
  the template cannot show rewritten as ``<tool_call>`` text, ``search.pair_templates``):
  the prompt's tokens must be a prefix of prompt + chosen and of prompt + rejected, and
  chosen and rejected must be different tokens (message dicts that differ only in tool
  calls render identically under a plain ChatML template, and DPO then learns nothing).

A template that, used as it is, drops tool calls or tool results (TRL's
``supports_tool_calling``) is named in the report's notes, with how many kept pairs
would have rendered to the same tokens without the rewrite.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.jsonl import JsonlError, read_jsonl
from stepwise.search.pair_templates import (  # the reasons are re-exported for reports
    PREFIX_REASON,  # noqa: F401
    RENDER_REASON,  # noqa: F401
    SAME_TOKENS_REASON,
    template_problem,
)

ROLES = ("system", "user", "assistant", "tool")


class PairsError(StepwiseError):
    """A pairs file that cannot be trained on."""


@dataclass
class PairReport:
    """What was read, what was kept, and why the rest was dropped (with first line numbers)."""

    path: str
    rows: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    conflicting_prompts: int = 0  # kept, but no model can fit them all: see ``conflicts``
    notes: list[str] = field(default_factory=list)  # about the chat template, not a row
    unreadable: list[str] = field(default_factory=list)  # ``file:line: why`` of each such line

    def drop(self, reason: str, line: int) -> None:
        self.dropped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(line)

    def lines(self) -> list[str]:
        """One readable line per reason."""
        return [f"{count} × {reason} (line {', '.join(map(str, self.examples[reason]))}"
                f"{', ...' if count > len(self.examples[reason]) else ''})"
                for reason, count in self.dropped.most_common()]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "kept": self.kept,
                "dropped": dict(self.dropped), "example_lines": self.examples,
                "conflicting_prompts": self.conflicting_prompts, "notes": self.notes,
                "unreadable_lines": self.unreadable}


def _messages_problem(messages: Any, side: str) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"empty {side}" if messages in ([], None, "") else f"{side} is not a list of messages"
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            return f"{side} has a message without a known role"
        if not isinstance(message.get("content", ""), str | type(None)):
            return f"{side} has a message whose content is not text"
    return None


def row_problem(row: Any) -> str | None:
    """Why a row cannot be trained on, or None."""
    if not isinstance(row, Mapping):
        return "not a JSON object"
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            return f"missing field {key!r}"
    for side in ("prompt", "chosen", "rejected"):
        problem = _messages_problem(row[side], side)
        if problem:
            return problem
    if row["prompt"][-1]["role"] not in ("user", "tool"):
        return "prompt does not end in a user or tool turn"
    for side in ("chosen", "rejected"):
        if row[side][0]["role"] != "assistant":
            return f"{side} does not start with an assistant turn"
        if not any((m.get("content") or "").strip() or m.get("tool_calls") for m in row[side]):
            return f"empty {side}"
    if row["chosen"] == row["rejected"]:
        return "chosen and rejected are the same step"
    tools = row.get("tools")
    if isinstance(tools, str) and tools.strip():
        try:
            json.loads(tools)
        except json.JSONDecodeError:
            return "tools is not valid JSON"
    return None


def read_rows(path: str | Path) -> tuple[list[tuple[int, dict]], list[JsonlError]]:
    """(line number, row) for each line the JSONL reader reads as an object, and its error
    (``file:line: why``) for each line it refuses; blank lines are skipped.

    The one JSONL reader reads the file, each bad line handed back instead of raised, so
    that a bad line is one dropped pair instead of the end of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"{path}: no such pairs file")
    unreadable: list[JsonlError] = []
    rows = read_jsonl(path, on_bad_line=unreadable.append)
    if unreadable and not rows:
        raise PairsError(f"{path}: not JSONL (no line is a JSON object; {unreadable[0]}); "
                         "expected one preference pair per line")
    return rows, unreadable


def check_pairs(path: str | Path, tokenizer: Any = None) -> tuple[list[dict], PairReport]:
    """The trainable rows of a pairs file and the report on the others."""
    rows, unreadable = read_rows(path)
    report = PairReport(path=str(path), rows=len(rows) + len(unreadable))
    for error in unreadable:  # "not JSON", "not a JSON object", "not UTF-8 text"
        report.drop(error.why.split(" (")[0], error.line)
        report.unreadable.append(str(error))
    good: list[tuple[int, dict]] = []
    for number, row in rows:
        problem = row_problem(row)
        if problem:
            report.drop(problem, number)
        else:
            good.append((number, dict(row)))
    if tokenizer is not None:
        good = _template_checked(good, tokenizer, report)
    report.kept = len(good)
    report.conflicting_prompts = conflicts([row for _, row in good])
    return [row for _, row in good], report


def _template_checked(good: Sequence[tuple[int, dict]], tokenizer: Any,
                      report: PairReport) -> list[tuple[int, dict]]:
    """The rows that render cleanly through the rewrite; a note when the raw template
    would have lost tool calls."""
    from trl.chat_template_utils import supports_tool_calling

    kept = []
    for number, row in good:
        problem = template_problem(row, tokenizer)
        if problem:
            report.drop(problem, number)
        else:
            kept.append((number, row))
    if not supports_tool_calling(tokenizer):
        collapsed = sum(template_problem(row, tokenizer, rewrite=False) == SAME_TOKENS_REASON
                        for _, row in kept)
        report.notes.append(
            "the chat template, used as it is, drops tool calls or tool results (TRL's "
            "supports_tool_calling is False): the pairs are rendered with tool schemas in the "
            "system prompt and calls as <tool_call> text instead; without that rewrite "
            f"{collapsed} of {len(kept)} kept pairs would render chosen and rejected to the "
            "same tokens")
    return kept


def conflicts(rows: Sequence[Mapping[str, Any]]) -> int:
    """Prompts where one step is chosen in one pair and rejected in another.

    Pairs from every parent of a tree (``--all-parents``) can do this: the decision
    prompt of a page does not show the memory that differs between branches.
    """
    sides: dict[str, tuple[set[str], set[str]]] = {}
    for row in rows:
        key = json.dumps([row["prompt"], row.get("tools")], sort_keys=True)
        chosen, rejected = sides.setdefault(key, (set(), set()))
        chosen.add(json.dumps(row["chosen"], sort_keys=True))
        rejected.add(json.dumps(row["rejected"], sort_keys=True))
    return sum(bool(chosen & rejected) for chosen, rejected in sides.values())
