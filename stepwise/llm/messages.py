"""Message conversion shared by the backends: OpenAI wire format and canonical request forms.

The canonical form keeps only what changes a model's answer (roles, text, tool calls,
tool results, tool schemas, output-changing parameters) so that two requests a model
would answer identically hash identically, whatever message ids or metadata they carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.utils.function_calling import convert_to_openai_tool

# Call parameters that change how a call is made, not what the model answers.
TRANSPORT_PARAMS = frozenset(
    {"timeout", "max_retries", "stream", "stream_options", "callbacks", "tags", "metadata",
     "run_name", "run_manager", "streaming"}
)


def role_of(message: BaseMessage) -> str:
    """The OpenAI role of a langchain message."""
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "tool"
    role = getattr(message, "role", None)  # ChatMessage
    if isinstance(role, str):
        return role
    raise ValueError(f"cannot send a {type(message).__name__} to a chat model")


def to_chat_dicts(messages: Sequence[BaseMessage], *, arguments_as: str = "json") -> list[dict]:
    """Messages as OpenAI-style dicts.

    ``arguments_as="json"`` gives tool-call arguments as a JSON string (the wire format);
    ``"dict"`` gives them as objects, which is what Hugging Face chat templates expect.
    """
    out: list[dict] = []
    for message in messages:
        row: dict[str, Any] = {"role": role_of(message), "content": message.content}
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            row["tool_calls"] = [
                {
                    "id": call.get("id") or f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call["args"], ensure_ascii=False)
                        if arguments_as == "json"
                        else call["args"],
                    },
                }
                for i, call in enumerate(message.tool_calls)
            ] + [
                # A malformed call goes back so that the error reply after it answers a
                # call; servers parse arguments, so the raw text travels inside valid JSON.
                {
                    "id": call.get("id") or f"invalid_{i}",
                    "type": "function",
                    "function": {
                        "name": call.get("name") or "unparsed_call",
                        "arguments": json.dumps({"unparsed": call.get("args") or ""},
                                                ensure_ascii=False)
                        if arguments_as == "json" else {"unparsed": call.get("args") or ""},
                    },
                }
                for i, call in enumerate(message.invalid_tool_calls)
            ]
            if not message.content:
                row["content"] = None if arguments_as == "json" else ""
        if isinstance(message, ToolMessage):
            row["tool_call_id"] = message.tool_call_id
        if message.name:
            row["name"] = message.name
        out.append(row)
    return out


def token_usage(message: BaseMessage) -> tuple[int, int]:
    """(input tokens, output tokens) a model reported for a message; (0, 0) when none."""
    usage = getattr(message, "usage_metadata", None) or {}
    return usage.get("input_tokens", 0), usage.get("output_tokens", 0)


def training_dicts(messages: Sequence[BaseMessage]) -> list[dict]:
    """Messages as rows for training data (TRL): tool-call arguments as JSON strings and
    ``content`` always a string, so Arrow never sees mixed types."""
    rows = to_chat_dicts(messages, arguments_as="json")
    for row in rows:
        row["content"] = row.get("content") or ""
    return rows


def tool_schemas(tools: Sequence[Any]) -> list[dict]:
    """Any langchain tool, pydantic model, function or schema as an OpenAI tool dict."""
    return [convert_to_openai_tool(tool) for tool in tools]


def canonical_message(message: BaseMessage) -> dict:
    """What of a message reaches the model; ids, metadata and usage are left out."""
    row: dict[str, Any] = {"role": role_of(message), "content": message.content}
    if isinstance(message, AIMessage) and message.tool_calls:
        row["tool_calls"] = [
            {"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls
        ]
    if isinstance(message, AIMessage) and message.invalid_tool_calls:
        row["invalid_tool_calls"] = [
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id")}
            for c in message.invalid_tool_calls
        ]
    if isinstance(message, ToolMessage):
        row["tool_call_id"] = message.tool_call_id
    if message.name:
        row["name"] = message.name
    return row


def _plain_numbers(value: Any) -> Any:
    """``0.0`` and ``0`` as one value, so ``temperature=0`` and ``temperature=0.0`` match."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_numbers(v) for v in value]
    return value


def canonical_request(messages: Sequence[BaseMessage], params: dict[str, Any]) -> dict:
    """The canonical form of a chat request: messages, tools and output-changing params."""
    params = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and v is not None}
    tools = params.pop("tools", None) or []
    if params.get("stop") == []:
        params.pop("stop")
    return {
        "messages": [canonical_message(m) for m in messages],
        "tools": tools,
        "params": _plain_numbers(json.loads(json.dumps(params, sort_keys=True, default=str))),
    }


def request_key(request: dict) -> str:
    """A stable hash of a canonical request."""
    blob = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
