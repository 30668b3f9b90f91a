"""Tool schemas and tool calls for chat templates that render neither.

Many instruct models ship a plain ChatML template (SmolLM2 among them): it ignores
``tools=`` and renders an assistant turn that only calls tools as an empty turn. A model
prompted that way never sees a schema, and training data rendered that way turns a chosen
and a rejected step into the same tokens. So the template is probed once (the same
messages rendered with and without a tool, a tool call rendered or not), and where it
falls short the messages are rewritten before rendering, Hermes-style:

- the tools (one signature line each: name, typed arguments, what they mean) and the
  call format go into the system prompt (``<tools>`` ...);
- an assistant tool-call turn becomes text, one ``<tool_call>{json}</tool_call>`` per call,
  the very format ``parse_hermes_tool_calls`` reads back from the model's answer;
- a tool result the template cannot show becomes a user turn in ``<tool_response>`` tags.

Inference (``HFChatModel``), training rows and the pair check all go through
``messages_for_template``, so what a model is trained on is what it is prompted with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_PROBE_NAME = "stepwise_probe_tool"
_PROBE_ARG = "stepwise_probe_argument"
_PROBE_RESULT = "stepwise_probe_result"
_PROBE_TOOL = {"type": "function", "function": {
    "name": _PROBE_NAME, "description": "A probe.",
    "parameters": {"type": "object", "properties": {_PROBE_ARG: {"type": "string"}}}}}

TOOLS_HEADER = (
    "# Tools\n\nYou may call one or more functions, listed inside <tools></tools> as "
    "name(arguments; ? marks optional ones): what it does.\n<tools>\n{schemas}\n</tools>\n\n"
    "To call a function, answer with one block per call, and nothing else:\n"
    '<tool_call>{{"name": <function name>, "arguments": <JSON object>}}</tool_call>'
)


@dataclass(frozen=True)
class TemplateSupport:
    """What a chat template renders by itself."""

    tools: bool  # tool schemas passed as ``tools=``
    tool_calls: bool  # an assistant turn's ``tool_calls``
    tool_results: bool  # a ``tool`` turn's content

    @property
    def complete(self) -> bool:
        return self.tools and self.tool_calls and self.tool_results


def _render(tokenizer: Any, messages: list[dict], tools: list[dict] | None = None) -> str | None:
    try:
        return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    except Exception:  # noqa: BLE001 -- a template that raises on a probe does not support it
        return None


def template_support(tokenizer: Any) -> TemplateSupport:
    """Probe the tokenizer's chat template once; the answer is kept on the tokenizer."""
    cached = getattr(tokenizer, "_stepwise_template_support", None)
    if cached is not None and cached[0] == tokenizer.chat_template:
        return cached[1]
    user = [{"role": "user", "content": "Hello."}]
    plain = _render(tokenizer, user)
    with_tools = _render(tokenizer, user, [_PROBE_TOOL])
    call = {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_probe", "type": "function",
        "function": {"name": _PROBE_NAME, "arguments": {_PROBE_ARG: "x"}}}]}
    with_call = _render(tokenizer, [*user, call]) or ""
    result = {"role": "tool", "content": _PROBE_RESULT, "tool_call_id": "call_probe"}
    with_result = _render(tokenizer, [*user, call, result]) or ""
    support = TemplateSupport(
        tools=bool(with_tools) and with_tools != plain and _PROBE_NAME in with_tools,
        tool_calls=_PROBE_NAME in with_call and _PROBE_ARG in with_call,
        tool_results=_PROBE_RESULT in with_result,
    )
    try:
        tokenizer._stepwise_template_support = (tokenizer.chat_template, support)
    except AttributeError:
        pass
    return support


JSON_TYPES = {"integer": "int", "string": "str", "number": "float", "boolean": "bool",
              "object": "object", "null": "null"}


def _type_text(schema: Mapping[str, Any]) -> str:
    """A parameter's JSON schema as a short type: ``int``, ``str[]``, ``a|b`` ..."""
    if "enum" in schema:
        return "|".join(json.dumps(value, ensure_ascii=False) for value in schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"] or options
        return "|".join(_type_text(option) for option in kept)
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(JSON_TYPES.get(k, str(k)) for k in kind if k != "null")
    if kind == "array":
        return _type_text(schema.get("items") or {}) + "[]"
    return JSON_TYPES.get(kind, "any") if kind else "any"


def tool_signature(tool: Mapping[str, Any]) -> str:
    """One tool as a line: ``name(arg: type, opt?: type = default): description``, then
    what each argument means. The JSON schema says the same in about three times the
    tokens, and every prompt token costs a small model's training run on a CPU."""
    function = tool.get("function", tool)
    parameters = function.get("parameters") or {}
    required = set(parameters.get("required") or ())
    args, notes = [], []
    for name, schema in (parameters.get("properties") or {}).items():
        arg = f"{name}{'' if name in required else '?'}: {_type_text(schema)}"
        if schema.get("default") is not None:
            arg += f" = {json.dumps(schema['default'], ensure_ascii=False)}"
        args.append(arg)
        note = (schema.get("description") or "").rstrip(".")
        if "minimum" in schema or "maximum" in schema:
            bounds = f"{schema.get('minimum', '')} to {schema.get('maximum', '')}"
            note = f"{note} ({bounds})" if note else bounds
        if note:
            notes.append(f"{name}: {note}.")
    description = (function.get("description") or "").strip()
    return " ".join([f"{function.get('name')}({', '.join(args)}): {description}", *notes])


def tools_system_text(tools: Sequence[Mapping[str, Any]]) -> str:
    """The tools (one signature line each) and the call format, as system-prompt text."""
    return TOOLS_HEADER.format(schemas="\n".join(tool_signature(tool) for tool in tools))


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def tool_call_text(calls: Sequence[Mapping[str, Any]]) -> str:
    """OpenAI-style tool calls as ``<tool_call>`` blocks, one line each."""
    blocks = []
    for call in calls:
        function = call.get("function") or call
        payload = {"name": function.get("name"),
                   "arguments": _arguments(function.get("arguments", function.get("args", {})))}
        blocks.append(f"<tool_call>{json.dumps(payload, ensure_ascii=False)}</tool_call>")
    return "\n".join(blocks)


def messages_for_template(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None,
    tokenizer: Any,
) -> tuple[list[dict], list[dict] | None]:
    """Messages (and the tools to pass) such that the template shows every schema and call.

    A template that renders everything gets the messages unchanged. Otherwise what it
    drops is written into the messages as text, and ``None`` is returned for the tools
    when they now live in the system prompt.
    """
    rows = [dict(message) for message in messages]
    tools = [dict(tool) for tool in tools] if tools else None
    support = template_support(tokenizer)
    if tools and not support.tools:
        text = tools_system_text(tools)
        if rows and rows[0].get("role") == "system":
            head = rows[0].get("content") or ""
            rows[0] = {**rows[0], "content": f"{head}\n\n{text}" if head else text}
        else:
            rows.insert(0, {"role": "system", "content": text})
        tools = None
    if not support.tool_calls:
        for i, row in enumerate(rows):
            if row.get("role") == "assistant" and row.get("tool_calls"):
                content = row.get("content") or ""
                calls = tool_call_text(row["tool_calls"])
                rows[i] = {key: value for key, value in row.items() if key != "tool_calls"}
                rows[i]["content"] = f"{content}\n{calls}" if content else calls
    if not support.tool_results:
        for i, row in enumerate(rows):
            if row.get("role") == "tool":
                rows[i] = {"role": "user", "content":
                           f"<tool_response>\n{row.get('content') or ''}\n</tool_response>"}
    for row in rows:
        if row.get("content") is None:  # some templates concatenate content and fail on None
            row["content"] = ""
    return rows, tools


def render_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]],
                tools: Sequence[Mapping[str, Any]] | None = None, *,
                add_generation_prompt: bool = False, **template_kwargs: Any) -> str:
    """The prompt text a model sees: the template over the rewritten messages."""
    rows, tools_arg = messages_for_template(messages, tools, tokenizer)
    return tokenizer.apply_chat_template(rows, tools=tools_arg, tokenize=False,
                                         add_generation_prompt=add_generation_prompt,
                                         **template_kwargs)


def token_ids(encoded: Any) -> list[int]:
    """Token ids from what ``apply_chat_template(tokenize=True)`` returned: a list, a
    dict/BatchEncoding (transformers 5 returns one by default), a batch of one, a tensor."""
    if isinstance(encoded, Mapping) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    if hasattr(encoded, "tolist"):
        encoded = encoded.tolist()
    encoded = list(encoded)
    if encoded and isinstance(encoded[0], list | tuple):
        if len(encoded) != 1:
            raise ValueError("expected the ids of one conversation")
        encoded = list(encoded[0])
    return [int(token) for token in encoded]


def encode_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]],
                tools: Sequence[Mapping[str, Any]] | None = None, *,
                generation_prompt: bool = False) -> list[int]:
    """The template's token ids for messages already rewritten (``messages_for_template``)."""
    return token_ids(tokenizer.apply_chat_template(
        list(messages), tools=tools, add_generation_prompt=generation_prompt, tokenize=True))
