"""A chat model for any OpenAI-compatible server: vLLM, SGLang, llama.cpp, TGI, OpenAI.

Built on the ``openai`` SDK for the wire format and its timeout (which closes the
connection, so a server that aborts on disconnect stops generating). What is added here
is what langchain's own OpenAI client leaves out for self-hosted servers: ``n``
generations from one request, vLLM's ``chat_template_kwargs`` / ``structured_outputs`` /
``thinking_token_budget``, the server's reasoning text kept, malformed tool-call JSON
turned into ``invalid_tool_calls`` instead of an exception, ``tool_choice`` sent whenever
tools are bound, an empty answer turned into an error, token ids and logprobs on request,
and a retry policy that does not retry timeouts but does retry an unusable answer.

Retries are done here, not by the SDK: the SDK retries a timed-out request with the same
budget as a refused connection, and a single-slot server (llama.cpp) that is still
generating the first answer then times out every retry too, and every request after.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from stepwise.errors import ConfigError, ModelBackendError
from stepwise.llm.base import ToolCallingMixin, normalize_tool_choice, tracing_params
from stepwise.llm.messages import to_chat_dicts
from stepwise.llm.tool_calls import parse_openai_tool_calls

REASONING_FIELDS = ("reasoning_content", "reasoning")  # vLLM < 0.11 and later spellings
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx, as the SDK does
MAX_BACKOFF_S = 8.0


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


def _logprobs(raw: Any) -> list[float] | None:
    """The chosen token's logprob per completion token, from the chat shape (OpenAI, vLLM,
    llama.cpp: ``content[*].logprob``) or the completions shape (``token_logprobs``)."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("content"), list):
        values = [entry.get("logprob") if isinstance(entry, dict) else None
                  for entry in raw["content"]]
    elif isinstance(raw.get("token_logprobs"), list):
        values = raw["token_logprobs"]
    else:
        return None
    if not all(isinstance(v, int | float) for v in values):
        return None  # a gap would misalign logprobs and tokens: keep none rather
    return [float(v) for v in values]


def _token_data(payload: dict, choice: dict) -> dict[str, list]:
    """Token ids and logprobs under the keys every stepwise backend uses, where the server
    sent them: vLLM puts ``prompt_token_ids`` on the answer and ``token_ids`` on a choice
    (``return_token_ids``); llama.cpp sends logprobs only."""
    data: dict[str, list] = {}
    if isinstance(payload.get("prompt_token_ids"), list):
        data["prompt_token_ids"] = payload["prompt_token_ids"]
    if isinstance(choice.get("token_ids"), list):
        data["completion_token_ids"] = choice["token_ids"]
    if (logprobs := _logprobs(choice.get("logprobs"))) is not None:
        data["completion_logprobs"] = logprobs
    return data


def _json_kind(value: Any) -> str:
    """``value``'s JSON type with its article, for saying what an answer held instead."""
    for kind, name in ((bool, "a boolean"), (int | float, "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else f"a {type(value).__name__}"


def _answer_problem(payload: Any) -> str | None:
    """What makes an HTTP 200 answer unusable, in words, or None: a server behind a proxy
    can send an HTML page, and a broken one odd shapes, which must be the backend's error
    rather than a TypeError from deep in the parsing."""
    if isinstance(payload, str):
        return f"not JSON ({len(payload)} characters of text: {payload[:80]!r})"
    if not isinstance(payload, dict):
        return f"{_json_kind(payload)}, not a JSON object"
    if not isinstance(payload.get("choices"), list) or not payload["choices"]:
        return f"answer has no choices: {str(payload)[:200]}"
    if payload.get("usage") is not None and not isinstance(payload["usage"], dict):
        return f"usage is {_json_kind(payload['usage'])}, not an object"
    for index, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            return f"choice {index} is {_json_kind(choice)}, not an object"
        message = choice.get("message")
        if message is None:
            continue
        if not isinstance(message, dict):
            return f"choice {index}: message is {_json_kind(message)}, not an object"
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return f"choice {index}: content is {_json_kind(content)}, not a string"
        calls = message.get("tool_calls")
        if calls is not None and not (isinstance(calls, list)
                                      and all(isinstance(call, dict) for call in calls)):
            return f"choice {index}: tool_calls is not a list of objects"
    return None


def _says_something(message: AIMessage | AIMessageChunk) -> bool:
    """Whether an answer has text (not only whitespace), a tool call or reasoning text."""
    text = message.content if isinstance(message.content, str) else str(message.content)
    return bool(text.strip() or message.tool_calls or message.invalid_tool_calls
                or getattr(message, "tool_call_chunks", None)
                or message.additional_kwargs.get("reasoning_content"))


class _UnusableAnswer(Exception):
    """An HTTP 200 answer that cannot be used (not JSON, truncated, odd shapes): retried
    like a 5xx, since a proxy or an overloaded server sends such bodies now and then."""

    def __init__(self, problem: str, response: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.response = response  # the HTTP response, for its Retry-After


def _retryable(exc: Exception) -> bool:
    """The SDK's rule: a refused or dropped connection, 408/409/429/5xx, or what the
    server's ``x-should-retry`` header says; and an unusable HTTP 200 answer. Timeouts are
    decided by the caller."""
    if isinstance(exc, _UnusableAnswer):
        return True
    if isinstance(exc, openai.APIStatusError):
        should = exc.response.headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)


def _backoff(retries: int, exc: Exception) -> float:
    """Seconds before the next try: the server's Retry-After when sane, else 0.5 s doubling
    up to 8 s, with jitter (the SDK's schedule)."""
    response = getattr(exc, "response", None)
    headers = response.headers if response is not None else {}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            given = float(headers.get(name) or "") / scale
        except ValueError:
            continue
        if 0 <= given <= 60:
            return given
    return min(0.5 * 2**retries, MAX_BACKOFF_S) * (1 - 0.25 * random.random())


class _StreamWatch:
    """What a stream has said so far, and when it must have ended: the SDK's timeout bounds
    each read, and a stream that keeps trickling would otherwise never time out."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.said = False
        self.finish: Any = None
        self._given: set[tuple[str, Any]] = set()

    def first(self, field: str, call_index: Any, value: str | None) -> str | None:
        """A tool call's name or id the first time the stream gives it, then None: OpenAI
        sends them once, llama-cpp-python on every delta, and chunks add up by
        concatenation (``get_weatherget_weather``)."""
        if not value or (field, call_index) in self._given:
            return None
        self._given.add((field, call_index))
        return value

    def saw(self, message: AIMessageChunk) -> None:
        self.said = self.said or _says_something(message)
        self.finish = message.response_metadata.get("finish_reason", self.finish)


class OpenAICompatChatModel(ToolCallingMixin, BaseChatModel):
    """Chat model for an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Example: ``OpenAICompatChatModel(base_url="http://localhost:8000/v1",
    model="Qwen/Qwen3-8B", chat_template_kwargs={"enable_thinking": False})``.

    ``tool_choice`` is sent whenever a call binds tools and gives none itself (``auto``,
    ``required``, ``none`` or a bound tool's name; ``None`` sends nothing): llama.cpp's
    ``chatml-function-calling`` shows the model no schema without it, and ``auto`` is what
    vLLM assumes anyway.

    An answer with no text, no tool call and no reasoning text raises
    ``ModelBackendError`` (the caller's step decides what a failed call costs), never
    passes as an empty answer. With ``n > 1`` the empty choices are dropped and the others
    kept (a caller that needs ``n`` asks again for the rest); only all empty is an error.

    ``timeout`` bounds each request, a streamed one in all; one that runs out is cancelled
    (the connection is closed), counted in ``timeouts`` and, unless ``retry_timeouts``, not
    tried again. ``max_retries`` applies to refused connections, 408/409/429, 5xx and an
    HTTP 200 answer that cannot be used (not JSON, truncated, odd shapes; not an empty one).
    llama-cpp-python's server stops generating when a *stream* is closed but finishes a
    plain request it can no longer deliver: ``streaming=True`` frees it at the timeout.

    ``return_token_data`` asks for logprobs and vLLM's token ids and keeps them in each
    answer's ``response_metadata`` as ``prompt_token_ids``, ``completion_token_ids`` and
    ``completion_logprobs`` (only those the server sent).
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
    retry_timeouts: bool = False
    tool_choice: str | None = "auto"
    return_token_data: bool = False
    chat_template_kwargs: dict[str, Any] | None = None
    thinking_token_budget: int | None = None
    extra_body: dict[str, Any] | None = None
    streaming: bool = False

    _client: openai.OpenAI | None = PrivateAttr(default=None)
    _async_client: openai.AsyncOpenAI | None = PrivateAttr(default=None)
    _timeouts: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    @property
    def timeouts(self) -> int:
        """How many requests to this model have timed out so far."""
        return self._timeouts

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, **self._sampling_defaults(),
                "tool_choice": self.tool_choice, "return_token_data": self.return_token_data}

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
            "max_retries": 0,  # retries are this class's own policy (see the module doc)
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
        elif kwargs.get("tool_choice") is None and self.tool_choice is not None:
            kwargs["tool_choice"] = self._default_tool_choice(kwargs["tools"])
        if self.return_token_data:
            request["logprobs"] = True
            request["top_logprobs"] = 0
            extra["return_token_ids"] = True
        request.update({k: v for k, v in kwargs.items() if v is not None})
        if extra:
            request["extra_body"] = extra
        return request

    def _default_tool_choice(self, tools: list[dict]) -> Any:
        try:
            return normalize_tool_choice(self.tool_choice, tools)
        except ValueError as exc:
            raise ConfigError(f"model {self.model}: {exc}") from None

    # -- failures -----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"model server {self.base_url} (model {self.model})"

    def _count_timeout(self, exc: Exception) -> None:
        if isinstance(exc, openai.APITimeoutError):
            with self._lock:
                self._timeouts += 1

    def _retry_delay(self, exc: Exception, retries: int) -> float | None:
        """Seconds to wait before trying ``exc``'s request again; None to give up."""
        self._count_timeout(exc)
        if isinstance(exc, openai.APITimeoutError):
            worth_it = self.retry_timeouts
        else:
            worth_it = _retryable(exc)
        if not worth_it or retries >= self.max_retries:
            return None
        return _backoff(retries, exc)

    def _timeout_error(self, retries: int) -> ModelBackendError:
        tried = f"after {retries} retries" if self.retry_timeouts else "not retried"
        return ModelBackendError(f"{self._where}: no answer within {self.timeout:g}s, request "
                                 f"cancelled, {tried} (timeouts so far: {self.timeouts})")

    def _backend_error(self, exc: Exception, retries: int) -> ModelBackendError:
        if isinstance(exc, openai.APITimeoutError):
            return self._timeout_error(retries)
        if isinstance(exc, openai.APIConnectionError):
            why = f"cannot connect after {retries} retries ({exc.__cause__ or exc})"
        elif isinstance(exc, openai.APIStatusError):
            why = f"HTTP {exc.status_code} after {retries} retries: {str(exc.message)[:200]}"
        elif isinstance(exc, _UnusableAnswer):
            why = f"unusable answer after {retries} retries: {exc.problem}"
        else:
            why = f"unusable answer: {str(exc)[:200]}"
        return ModelBackendError(f"{self._where}: {why}")

    def _empty_answer(self, finish_reasons: list[Any], streamed: bool = False) -> ModelBackendError:
        reasons = ", ".join(dict.fromkeys(str(r) for r in finish_reasons))
        ended = "; the stream ended unfinished" if streamed and finish_reasons == [None] else ""
        return ModelBackendError(f"{self._where}: empty answer: no content and no tool calls "
                                 f"(finish_reason={reasons}){ended}")

    def _create(self, request: dict[str, Any]) -> Any:
        """A streamed request's events (what the stream says later is never retried)."""
        for retries in itertools.count():
            try:
                return self.client.chat.completions.create(**request)
            except (openai.OpenAIError, ValueError) as exc:
                delay = self._retry_delay(exc, retries)
                if delay is None:
                    raise self._backend_error(exc, retries) from exc
            time.sleep(delay)

    async def _acreate(self, request: dict[str, Any]) -> Any:
        for retries in itertools.count():
            try:
                return await self.async_client.chat.completions.create(**request)
            except (openai.OpenAIError, ValueError) as exc:
                delay = self._retry_delay(exc, retries)
                if delay is None:
                    raise self._backend_error(exc, retries) from exc
            await asyncio.sleep(delay)

    def _answer(self, request: dict[str, Any]) -> ChatResult:
        """A plain request's answer: asked again (within ``max_retries``) while the server
        fails or answers something unusable."""
        for retries in itertools.count():
            try:
                return self._parsed(self.client.chat.completions.with_raw_response.create(
                    **request))
            except (openai.OpenAIError, ValueError, _UnusableAnswer) as exc:
                delay = self._retry_delay(exc, retries)
                if delay is None:
                    raise self._backend_error(exc, retries) from exc
            time.sleep(delay)

    async def _aanswer(self, request: dict[str, Any]) -> ChatResult:
        for retries in itertools.count():
            try:
                return self._parsed(await self.async_client.chat.completions.with_raw_response
                                    .create(**request))
            except (openai.OpenAIError, ValueError, _UnusableAnswer) as exc:
                delay = self._retry_delay(exc, retries)
                if delay is None:
                    raise self._backend_error(exc, retries) from exc
            await asyncio.sleep(delay)

    # -- response ---------------------------------------------------------------------

    def _parsed(self, raw: Any) -> ChatResult:
        """A raw HTTP 200 response as a result; a body that cannot be used (not JSON,
        truncated, odd shapes) is an ``_UnusableAnswer`` carrying the response."""
        response = raw.http_response
        try:
            # the SDK hands a non-JSON body back as text, and odd JSON as a loosely built model
            completion = raw.parse()
        except ValueError as exc:  # a JSON body cut short, or not JSON at all
            raise _UnusableAnswer(f"not JSON ({str(exc)[:120]})", response) from exc
        payload = (completion.model_dump(warnings=False) if isinstance(completion, BaseModel)
                   else completion)
        if (problem := _answer_problem(payload)) is not None:
            raise _UnusableAnswer(problem, response)
        try:
            return self._checked_result(payload)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:  # a shape not foreseen
            why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise _UnusableAnswer(why, response) from exc

    def _checked_result(self, payload: dict) -> ChatResult:
        usage = _usage(payload.get("usage"))
        generations = []
        for choice in payload["choices"]:
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
                    **_token_data(payload, choice),
                },
                usage_metadata=None if generations else usage,
                id=payload.get("id"),
            )
            if _says_something(ai):
                generations.append(ChatGeneration(
                    message=ai, generation_info={"finish_reason": choice.get("finish_reason")}
                ))
        if not generations:
            raise self._empty_answer([choice.get("finish_reason") for choice in payload["choices"]])
        return ChatResult(
            generations=generations,
            llm_output={"model_name": payload.get("model", self.model), "token_usage": usage},
        )

    def _chunk(self, payload: dict, watch: _StreamWatch) -> ChatGenerationChunk | None:
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
                name=watch.first("name", call.get("index"), (call.get("function") or {}).get("name")),
                args=(call.get("function") or {}).get("arguments"),
                id=watch.first("id", call.get("index"), call.get("id")),
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
            # token lists concatenate when chunks are added up
            response_metadata={**({"finish_reason": finish} if finish else {}),
                               **_token_data(payload, choice)},
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
        return self._answer(self._request(messages, stop, kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._aanswer(self._request(messages, stop, kwargs))

    def _watched_chunk(self, event: Any, watch: _StreamWatch) -> ChatGenerationChunk | None:
        """A stream event as a chunk; past the deadline, a timeout (the caller closes)."""
        if time.monotonic() > watch.deadline:
            with self._lock:
                self._timeouts += 1
            raise self._timeout_error(0)
        try:
            chunk = self._chunk(event.model_dump(warnings=False), watch)
        except (TypeError, KeyError, AttributeError) as exc:  # odd chunks; ValueError the caller's
            why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise ModelBackendError(f"{self._where}: unusable stream chunk ({why})") from exc
        if chunk is not None:
            watch.saw(chunk.message)
        return chunk

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
        events = self._create(self._stream_request(messages, stop, kwargs))
        watch = _StreamWatch(self.timeout)
        try:
            for event in events:
                chunk = self._watched_chunk(event, watch)
                if chunk is not None:
                    if run_manager and chunk.text:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        except (openai.OpenAIError, ValueError) as exc:  # mid-stream: never retried
            self._count_timeout(exc)
            raise self._backend_error(exc, 0) from exc
        finally:
            events.close()  # a stream given up on (or abandoned) stops the server generating
        if not watch.said:
            raise self._empty_answer([watch.finish], streamed=True)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        events = await self._acreate(self._stream_request(messages, stop, kwargs))
        watch = _StreamWatch(self.timeout)
        try:
            async for event in events:
                chunk = self._watched_chunk(event, watch)
                if chunk is not None:
                    if run_manager and chunk.text:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        except (openai.OpenAIError, ValueError) as exc:  # mid-stream: never retried
            self._count_timeout(exc)
            raise self._backend_error(exc, 0) from exc
        finally:
            await events.close()
        if not watch.said:
            raise self._empty_answer([watch.finish], streamed=True)
