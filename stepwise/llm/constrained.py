"""Forced tool calls for local models: JSON-schema-constrained decoding of one call.

A small instruct model asked to call a tool mostly answers in prose, and when pushed
(the answer started with ``<tool_call>``) copies the schema instead of filling it in.
Servers solve this with a grammar: llama.cpp and vLLM constrain decoding when
``tool_choice`` is ``required`` or names a tool. ``HFChatModel`` does the same here:
after ``<tool_call>``, every token must keep the text a prefix of
``{"name": <a bound tool>, "arguments": <that tool's parameters>}`` (lm-format-enforcer's
JSON-schema parser; its transformers adapter does not import under transformers 5, so
the tokenizer table it needs is built here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"


def forced_tool_name(tool_choice: Any, tools: Sequence[Mapping[str, Any]] | None) -> str | None:
    """``""`` for "any bound tool", a name for one tool, None when nothing is forced."""
    if not tools or tool_choice in (None, "auto", "none"):
        return None
    if tool_choice in ("required", "any", True):
        return ""
    if isinstance(tool_choice, Mapping):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    else:
        name = str(tool_choice)
    names = {tool["function"]["name"] for tool in tools}
    if name not in names:
        raise ValueError(f"tool_choice names {name!r}, which is not a bound tool "
                         f"(bound: {', '.join(sorted(names))})")
    return name


def call_schema(tools: Sequence[Mapping[str, Any]], name: str = "") -> dict:
    """The JSON schema of one call: the name and the arguments of a bound tool."""
    options = []
    for tool in tools:
        function = tool["function"]
        if name and function["name"] != name:
            continue
        parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
        parameters.setdefault("type", "object")
        options.append({"type": "object",
                        "properties": {"name": {"type": "string", "enum": [function["name"]]},
                                       "arguments": parameters},
                        "required": ["name", "arguments"]})
    return options[0] if len(options) == 1 else {"anyOf": options}


def _tokenizer_data(tokenizer: Any, end_ids: Sequence[int]) -> tuple[Any, frozenset[int]]:
    """lm-format-enforcer's per-tokenizer table (every regular token's text) and the
    whitespace-only tokens, built once per tokenizer."""
    cached = getattr(tokenizer, "_stepwise_enforcer_data", None)
    if cached is not None:
        return cached
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    special = set(tokenizer.all_special_ids)
    anchor = tokenizer.encode("0", add_special_tokens=False)[-1]
    regular = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        # Decoding after an anchor token keeps a leading space that decoding alone drops.
        after_anchor = tokenizer.decode([anchor, token])[1:]
        alone = tokenizer.decode([token])
        regular.append((token, after_anchor, len(after_anchor) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens, clean_up_tokenization_spaces=False).rstrip("\ufffd")

    data = TokenEnforcerTokenizerData(regular, decode, list(end_ids) or tokenizer.eos_token_id,
                                      False, len(tokenizer))
    blank = frozenset(token for token, text, _ in regular if text and not text.strip())
    try:
        tokenizer._stepwise_enforcer_data = (data, blank)
    except AttributeError:
        pass
    return data, blank


def call_constraint(tokenizer: Any, tools: Sequence[Mapping[str, Any]], name: str = "",
                    end_ids: Sequence[int] = ()):
    """A ``prefix_allowed_tokens_fn`` for ``generate`` that only lets one valid call through
    (``end_ids``: the model's end-of-turn tokens, allowed once the call is complete)."""
    try:
        from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser
        from lmformatenforcer.tokenenforcer import TokenEnforcer
    except ImportError:
        raise ImportError("a forced tool call on a local model needs lm-format-enforcer: "
                          "pip install -e '.[real]'") from None
    # Asks for the fields in the order the call format shows ("name" first); through the
    # token enforcer this is not always held, and either order parses.
    config = CharacterLevelParserConfig(force_json_field_order=True)
    parser = JsonSchemaParser(call_schema(tools, name), config=config)
    data, blank = _tokenizer_data(tokenizer, end_ids)
    enforcer = TokenEnforcer(data, parser)

    def allowed(batch_id: int, sent: Any) -> list[int]:
        tokens = enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens
        # No two whitespace tokens in a row: a weak model would spend its budget on them
        # (the parser's own whitespace limit does not hold token by token).
        if int(sent[-1]) in blank:
            compact = [token for token in tokens if token not in blank]
            return compact or tokens
        return tokens

    return allowed
