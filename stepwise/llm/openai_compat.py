"""A chat model for any OpenAI-compatible server: vLLM, SGLang, llama.cpp, TGI, OpenAI.

Built on the ``openai`` SDK, which already does timeouts and bounded retries with
backoff on 408/409/429/5xx and connection errors. What is added here is what
langchain's own OpenAI client leaves out for self-hosted servers: ``n`` generations
from one request, vLLM's ``chat_template_kwargs`` / ``structured_outputs`` /
``thinking_token_budget``, the server's reasoning text kept, and malformed tool-call
JSON turned into ``invalid_tool_calls`` instead of an exception.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from stepwise.errors import ModelBackendError
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.messages import to_chat_dicts
from stepwise.llm.tool_calls import parse_openai_tool_calls

REASONING_FIELDS = ("reasoning_content", "reasoning")  # vLLM < 0.11 and later spellings


def _usage(usage: Any) -> UsageMetadata | None:
    if not usage:
        return None
    usage = usage if isinstance(usage, dict) else usage.model_dump()
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    meta = UsageMetadata(
        input_tokens=prompt, output_tokens=completion,
        total_tokens=usage.get("total_tokens") or prompt + completion,
    )
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        meta["output_token_details"] = {"reasoning": reasoning}
    return meta


def _reasoning(payload: dict) -> dict:
    for field in REASONING_FIELDS:
        if payload.get(field):
            return {"reasoning_content": payload[field]}
    return {}


class OpenAICompatChatModel(ToolCallingMixin, BaseChatModel):
    """Chat model for an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Example: ``OpenAICompatChatModel(base_url="http://localhost:8000/v1",
    model="Qwen/Qwen3-8B", chat_template_kwargs={"enable_thinking": False})``.
    """

    model_config = ConfigDict(populate_by_name=True)

    base_url: str = Field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL", ""))
    model: str = Field(default="default", alias="model_name")
    api_key: SecretStr = Field(
        default_factory=lambda: SecretStr(os.environ.get("OPENAI_API_KEY", "EMPTY"))
    )
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = None
    stop: list[str] | None = None
    timeout: float = 60.0
    max_retries: int = 2
    chat_template_kwargs: dict[str, Any] | None = None
    thinking_token_budget: int | None = None
    extra_body: dict[str, Any] | None = None
    streaming: bool = False

    _client: openai.OpenAI | None = PrivateAttr(default=None)
    _async_client: openai.AsyncOpenAI | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, **self._sampling_defaults()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params(
            "openai-compatible", kwargs.get("model", self.model),
            temperature=kwargs.get("temperature", self.temperature),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            stop=stop or self.stop,
        )

    # -- clients --------------------------------------------------------------------

    def _client_kwargs(self) -> dict[str, Any]:
        if not self.base_url:
            raise ModelBackendError("no base_url: pass base_url= or set OPENAI_BASE_URL")
        return {
            "base_url": self.base_url,
            "api_key": self.api_key.get_secret_value(),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(**self._client_kwargs())
        return self._client

    @property
    def async_client(self) -> openai.AsyncOpenAI:
        if self._async_client is None:
            self._async_client = openai.AsyncOpenAI(**self._client_kwargs())
        return self._async_client

    # -- request ----------------------------------------------------------------------

    def _sampling_defaults(self) -> dict[str, Any]:
        values = {
            "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
            "n": self.n if self.n != 1 else None, "seed": self.seed, "stop": self.stop or None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The request body: model defaults, then per-call parameters, then vLLM extras."""
        kwargs = dict(kwargs)
        request: dict[str, Any] = {
            "model": kwargs.pop("model", self.model),
            "messages": to_chat_dicts(messages),
            **self._sampling_defaults(),
        }
        if stop:
            request["stop"] = stop
        extra = dict(self.extra_body or {})
        template_kwargs = {
            **(self.chat_template_kwargs or {}), **(kwargs.pop("chat_template_kwargs", None) or {})
        }
        if template_kwargs:
            extra["chat_template_kwargs"] = template_kwargs
        budget = kwargs.pop("thinking_token_budget", self.thinking_token_budget)
        if budget is not None:
            extra["thinking_token_budget"] = budget
        if (structured := kwargs.pop("structured_outputs", None)) is not None:
            extra["structured_outputs"] = structured
        extra.update(kwargs.pop("extra_body", None) or {})
        for key in ("timeout", "max_retries", "stream", "streaming"):
            kwargs.pop(key, None)
        if not kwargs.get("tools"):  # OpenAI rejects an empty tools list
            kwargs.pop("tools", None)
            kwargs.pop("tool_choice", None)
        request.update({k: v for k, v in kwargs.items() if v is not None})
        if extra:
            request["extra_body"] = extra
        return request

    def _backend_error(self, exc: Exception) -> ModelBackendError:
        where = f"{self.base_url} (model {self.model})"
        if isinstance(exc, openai.APITimeoutError):
            why = f"no answer within {self.timeout:g}s after {self.max_retries} retries"
        elif isinstance(exc, openai.APIConnectionError):
            why = f"cannot connect after {self.max_retries} retries ({exc.__cause__ or exc})"
        elif isinstance(exc, openai.APIStatusError):
            why = f"HTTP {exc.status_code}: {str(exc.message)[:200]}"
        else:
            why = f"unusable answer: {str(exc)[:200]}"
        return ModelBackendError(f"model server {where}: {why}")

    # -- response ---------------------------------------------------------------------

    def _result(self, completion: Any) -> ChatResult:
        payload = completion if isinstance(completion, dict) else completion.model_dump()
        if not isinstance(payload.get("choices"), list) or not payload["choices"]:
            raise ModelBackendError(
                f"model server {self.base_url}: answer has no choices: {str(payload)[:200]}"
            )
        usage = _usage(payload.get("usage"))
        generations = []
        for index, choice in enumerate(payload["choices"]):
            message = choice.get("message") or {}
            calls, invalid = parse_openai_tool_calls(message.get("tool_calls") or [])
            ai = AIMessage(
                content=message.get("content") or "",
                tool_calls=calls,
                invalid_tool_calls=invalid,
                additional_kwargs=_reasoning(message),
                response_metadata={
                    "model_name": payload.get("model", self.model),
                    "finish_reason": choice.get("finish_reason"),
                },
                usage_metadata=usage if index == 0 else None,
                id=payload.get("id"),
            )
            generations.append(ChatGeneration(
                message=ai, generation_info={"finish_reason": choice.get("finish_reason")}
            ))
        return ChatResult(
            generations=generations,
            llm_output={"model_name": payload.get("model", self.model), "token_usage": usage},
        )

    def _chunk(self, payload: dict) -> ChatGenerationChunk | None:
        usage = _usage(payload.get("usage"))
        choices = payload.get("choices") or []
        if not choices:
            if usage is None:
                return None
            return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))
        choice = choices[0]
        delta = choice.get("delta") or {}
        chunks = [
            tool_call_chunk(
                name=(call.get("function") or {}).get("name"),
                args=(call.get("function") or {}).get("arguments"),
                id=call.get("id"),
                index=call.get("index"),
            )
            for call in delta.get("tool_calls") or []
        ]
        finish = choice.get("finish_reason")
        message = AIMessageChunk(
            content=delta.get("content") or "",
            tool_call_chunks=chunks,
            additional_kwargs=_reasoning(delta),
            usage_metadata=usage,
            response_metadata={"finish_reason": finish} if finish else {},
        )
        return ChatGenerationChunk(
            message=message, generation_info={"finish_reason": finish} if finish else None
        )

    # -- langchain hooks ----------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        try:
            completion = self.client.chat.completions.create(**request)
        except (openai.OpenAIError, ValueError) as exc:
            raise self._backend_error(exc) from exc
        return self._result(completion)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        try:
            completion = await self.async_client.chat.completions.create(**request)
        except (openai.OpenAIError, ValueError) as exc:
            raise self._backend_error(exc) from exc
        return self._result(completion)

    def _stream_request(self, messages, stop, kwargs) -> dict[str, Any]:
        request = self._request(messages, stop, kwargs)
        if request.get("n", 1) != 1:
            raise ValueError("streaming gives one generation; use invoke/generate for n > 1")
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        return request

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._stream_request(messages, stop, kwargs)
        try:
            for event in self.client.chat.completions.create(**request):
                chunk = self._chunk(event.model_dump())
                if chunk is not None:
                    if run_manager and chunk.text:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        except (openai.OpenAIError, ValueError) as exc:
            raise self._backend_error(exc) from exc

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._stream_request(messages, stop, kwargs)
        try:
            async for event in await self.async_client.chat.completions.create(**request):
                chunk = self._chunk(event.model_dump())
                if chunk is not None:
                    if run_manager and chunk.text:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        except (openai.OpenAIError, ValueError) as exc:
            raise self._backend_error(exc) from exc
