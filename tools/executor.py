"""Running a model's tool calls, with every kind of bad call turned into a message it sees.

12-factor agents, factor 9: a malformed call, an unknown tool, wrong arguments or a tool
that raises is not a crash but a tool result with ``status="error"`` that tells the model
what went wrong, so it can correct itself on the next turn. langgraph's prebuilt
``ToolNode`` handles the last three but never sees malformed calls (they live in
``AIMessage.invalid_tool_calls``) and only injects state when it is a graph node; agents
here need one error path for all four kinds and per-call bookkeeping, hence this module.

LangGraph's own control flow is no tool error: a tool that calls ``interrupt()`` (or sends
a command to a parent graph) raises a ``GraphBubbleUp``, which goes up to the graph
untouched, as ``ToolNode`` lets it, so the run pauses instead of telling the model
"failed".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import BaseTool, ToolException
from langgraph.errors import GraphBubbleUp
from pydantic import ValidationError

ErrorKind = Literal["malformed", "unknown_tool", "bad_arguments", "failed", "budget_spent"]


def error_message(call_id: str, name: str, kind: ErrorKind, text: str) -> ToolMessage:
    """A tool result saying what went wrong; ``artifact`` keeps the error kind for metrics."""
    return ToolMessage(content=f"Error: {text}", tool_call_id=call_id, name=name or "unknown",
                       status="error", artifact={"error": kind})


def is_error(message: ToolMessage) -> bool:
    return message.status == "error"


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic's errors as one line a model can act on: ``field: problem; ...``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def malformed_call_messages(message: AIMessage) -> list[ToolMessage]:
    """Error replies for the calls the model wrote but that could not be parsed."""
    replies = []
    for i, call in enumerate(message.invalid_tool_calls):
        raw = (call.get("args") or "")[:200]
        detail = call.get("error") or "the arguments are not valid JSON"
        replies.append(error_message(
            call.get("id") or f"invalid_{i}", call.get("name") or "", "malformed",
            f"could not parse your call to {call.get('name') or 'a tool'!r} ({detail}). "
            f"You wrote: {raw}. Send the arguments as one JSON object.",
        ))
    return replies


def run_tool_call(call: ToolCall, tools: Mapping[str, BaseTool],
                  injected: Mapping[str, Mapping[str, Any]] | None = None) -> ToolMessage:
    """Run one parsed call; never raises for anything the model did wrong, nor for a tool
    that fails. Only LangGraph's ``GraphBubbleUp`` (an ``interrupt()``) goes up.

    ``injected`` maps a tool name to hidden arguments it receives (``InjectedToolArg``
    fields such as a think tool's transcript), which the model neither sees nor sends.
    """
    call_id, name = call.get("id") or "", call["name"]
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        return error_message(call_id, name, "unknown_tool",
                             f"there is no tool named {name!r}. Available tools: {known}.")
    args = call["args"] if isinstance(call["args"], dict) else {}
    try:
        result = tool.invoke({**call, "args": {**args, **(injected or {}).get(name, {})},
                              "type": "tool_call"})
    except GraphBubbleUp:  # interrupt() and parent commands: the graph's, not an error
        raise
    except ValidationError as exc:
        return error_message(call_id, name, "bad_arguments",
                             f"wrong arguments for {name}: {describe_validation_error(exc)}")
    except (TypeError, json.JSONDecodeError) as exc:
        return error_message(call_id, name, "bad_arguments", f"wrong arguments for {name}: {exc}")
    except ToolException as exc:  # the tool's own refusal, e.g. a policy it enforces
        return error_message(call_id, name, "failed", f"{name}: {exc}")
    except Exception as exc:  # noqa: BLE001 -- a failing tool is the model's news, not our crash
        return error_message(call_id, name, "failed",
                             f"{name} failed: {type(exc).__name__}: {exc}")
    if not isinstance(result, ToolMessage):
        result = ToolMessage(content=str(result), tool_call_id=call_id, name=name)
    return result


def run_tool_calls(message: AIMessage, tools: Sequence[BaseTool] | Mapping[str, BaseTool],
                   injected: Mapping[str, Mapping[str, Any]] | None = None) -> list[ToolMessage]:
    """Replies to every call in ``message``, parsed or not, in the order the model made them."""
    by_name = tools if isinstance(tools, Mapping) else {tool.name: tool for tool in tools}
    replies = [run_tool_call(call, by_name, injected) for call in message.tool_calls]
    return replies + malformed_call_messages(message)
