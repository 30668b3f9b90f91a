"""What every stepwise chat backend shares: tool binding and structured output.

Tools are bound as OpenAI tool schemas under the ``tools`` call parameter, so every
backend (and the replay cassette key) sees the same form whatever the caller passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]


def normalize_tool_choice(tool_choice: Any, tools: list[dict]) -> Any:
    """langchain's tool_choice spellings as the OpenAI wire value."""
    if tool_choice is None or tool_choice is False:
        return None
    if tool_choice is True or tool_choice == "any":
        return "required"
    if tool_choice in ("auto", "none", "required"):
        return tool_choice
    if isinstance(tool_choice, str):
        names = [t["function"]["name"] for t in tools]
        if tool_choice not in names:
            raise ValueError(f"tool_choice {tool_choice!r} is not one of the bound tools {names}")
        return {"type": "function", "function": {"name": tool_choice}}
    return tool_choice


def tracing_params(provider: str, model_name: str, *, temperature: float | None = None,
                   max_tokens: int | None = None, stop: list[str] | None = None
                   ) -> LangSmithParams:
    """The standard tracing parameters every backend reports (``_get_ls_params``)."""
    params = LangSmithParams(ls_provider=provider, ls_model_name=model_name, ls_model_type="chat")
    if temperature is not None:
        params["ls_temperature"] = temperature
    if max_tokens is not None:
        params["ls_max_tokens"] = max_tokens
    if stop:
        params["ls_stop"] = stop
    return params


class ToolCallingMixin:
    """``bind_tools`` and ``with_structured_output`` for a ``BaseChatModel`` subclass."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | Any],
        *,
        tool_choice: str | bool | dict | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any langchain tool, pydantic model, function or schema)."""
        schemas = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        choice = normalize_tool_choice(tool_choice, schemas)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return self.bind(tools=schemas, **kwargs)  # type: ignore[attr-defined]

    def with_structured_output(
        self,
        schema: dict | type,
        *,
        method: StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | Any]:
        """Answers parsed into ``schema``: a JSON schema response format, a forced tool
        call, or plain JSON mode."""
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, strict=strict)
            parser: Runnable = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                json_schema = convert_to_json_schema(schema)
                response_format: dict = {
                    "type": "json_schema",
                    "json_schema": {"name": json_schema.get("title", "answer"), "schema": json_schema},
                }
                if strict is not None:
                    response_format["json_schema"]["strict"] = strict
            else:
                response_format = {"type": "json_object"}
            llm = self.bind(response_format=response_format)  # type: ignore[attr-defined]
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(f"unknown structured-output method {method!r}")
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks(
            [no_parse], exception_key="parsing_error"
        )
