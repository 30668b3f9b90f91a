"""Turning a model's raw tool calls into ``tool_calls`` / ``invalid_tool_calls``.

A malformed call is data for the agent (it becomes an error message the model sees),
never an exception: every parser here returns the broken calls instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages.tool import InvalidToolCall, ToolCall, invalid_tool_call, tool_call
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


def parse_openai_tool_calls(raw_calls: list[dict]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Parse OpenAI-format tool calls (``{"id", "function": {"name", "arguments"}}``)."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        try:
            parsed = parse_tool_call(raw, return_id=True)
        except OutputParserException as exc:
            invalid.append(make_invalid_tool_call(raw, str(exc)))
            continue
        if parsed is None:
            continue
        if not isinstance(parsed.get("args"), dict):
            error = f"arguments must be a JSON object, got {type(parsed.get('args')).__name__}"
            invalid.append(make_invalid_tool_call(raw, error))
            continue
        calls.append(tool_call(name=parsed["name"], args=parsed["args"], id=parsed.get("id")))
    return calls, invalid


def _call_id(block: str, index: int) -> str:
    """A deterministic id, so replayed and re-run transcripts hash the same."""
    return f"call_{index}_{hashlib.sha1(block.encode('utf-8')).hexdigest()[:10]}"


def parse_hermes_tool_calls(text: str) -> tuple[str, list[ToolCall], list[InvalidToolCall]]:
    """Split Hermes/Qwen-style output into text and ``<tool_call>{json}</tool_call>`` calls.

    Returns the text outside the blocks, the valid calls and the malformed ones (bad JSON,
    no name, arguments that are not an object, or a block the model never closed).
    """
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for index, match in enumerate(HERMES_BLOCK.finditer(text)):
        block = match.group(1).strip()
        call_id = _call_id(block, index)
        if not match.group(0).endswith("</tool_call>"):
            invalid.append(invalid_tool_call(args=block, id=call_id, error="unclosed <tool_call>"))
            continue
        try:
            payload: Any = json.loads(block)
        except json.JSONDecodeError as exc:
            invalid.append(invalid_tool_call(args=block, id=call_id, error=f"invalid JSON: {exc}"))
            continue
        name = payload.get("name") if isinstance(payload, dict) else None
        args = payload.get("arguments", {}) if isinstance(payload, dict) else None
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        if not isinstance(name, str) or not name:
            invalid.append(invalid_tool_call(args=block, id=call_id, error="tool call has no name"))
        elif not isinstance(args, dict):
            invalid.append(invalid_tool_call(
                name=name, args=block, id=call_id, error="arguments must be a JSON object"))
        else:
            calls.append(tool_call(name=name, args=args, id=call_id))
    content = HERMES_BLOCK.sub("", text).strip()
    return content, calls, invalid
