"""Replaying recorded model answers, and recording them from any chat model.

``ReplayChatModel`` answers only from a cassette and fails loudly on a miss, naming the
closest recorded request and what differs, so a changed prompt is found at once instead
of silently answered. ``record(model, path)`` wraps any chat model and appends each
answer to the cassette as one line (``Cassette.append``). Both key requests the same
way: messages, tool schemas and the call's output-changing parameters
(``stepwise.llm.messages.canonical_request``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from stepwise.errors import CassetteError
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.cassette import (
    FORMAT_VERSION,
    Cassette,
    closest_request,
    describe_difference,
    result_from_dict,
)
from stepwise.llm.messages import canonical_request, request_key

WORD = re.compile(r"\S+\s*|\s+")


class CassetteChatModel(ToolCallingMixin, BaseChatModel):
    """What replaying and recording share: the cassette path and how a request is keyed.

    ``temperature``, ``max_tokens`` and ``stop`` set here count as call parameters (they
    join the key, and a recorder passes them to the model it wraps).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    cassette: str
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    timeout: float | None = None
    max_retries: int | None = None
    streaming: bool = False

    _tape: Cassette | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _call_params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        defaults = {"temperature": self.temperature, "max_tokens": self.max_tokens,
                    "stop": stop or self.stop or None}
        return {**{k: v for k, v in defaults.items() if v is not None}, **kwargs}

    def _key(self, messages: list[BaseMessage], params: dict[str, Any]) -> tuple[str, dict]:
        request = canonical_request(messages, params)
        return request_key(request), request

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params(
            "stepwise-replay", kwargs.get("model", self.cassette),
            temperature=self.temperature, max_tokens=self.max_tokens, stop=stop or self.stop,
        )


class ReplayChatModel(CassetteChatModel):
    """Answers from a cassette; a request that was never recorded raises ``CassetteError``."""

    _cursors: dict[str, int] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "stepwise-replay"

    @property
    def tape(self) -> Cassette:
        if self._tape is None:
            with self._lock:
                if self._tape is None:
                    self._tape = Cassette.load(self.cassette)
        return self._tape

    def lookup(self, messages: list[BaseMessage], params: dict[str, Any]) -> ChatResult:
        """The recorded answer to this request (in recorded order when asked again)."""
        key, request = self._key(messages, params)
        rows = self.tape.by_key.get(key)
        if not rows:
            raise self._miss(request)
        with self._lock:
            turn = self._cursors.get(key, 0)
            self._cursors[key] = turn + 1
        return result_from_dict(rows[min(turn, len(rows) - 1)]["result"])

    def _miss(self, request: dict) -> CassetteError:
        recorded = self.tape.requests()
        closest = closest_request(request, recorded)
        where = f"cassette {self.cassette} ({len(recorded)} recorded requests)"
        if closest is None:
            return CassetteError(f"no recorded answer in {where}: it is empty")
        return CassetteError(
            f"no recorded answer in {where}; the closest differs: "
            f"{describe_difference(request, closest)}"
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self.lookup(messages, self._call_params(stop, kwargs))

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self.lookup(messages, self._call_params(stop, kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The recorded answer word by word, tool calls and usage in the last chunk."""
        result = self.lookup(messages, self._call_params(stop, kwargs))
        message = result.generations[0].message
        assert isinstance(message, AIMessage)
        text = message.content if isinstance(message.content, str) else ""
        for piece in WORD.findall(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="" if text or isinstance(message.content, str) else message.content,
                tool_call_chunks=[
                    tool_call_chunk(name=c["name"], args=_json(c["args"]), id=c.get("id"), index=i)
                    for i, c in enumerate(message.tool_calls)
                ],
                invalid_tool_calls=message.invalid_tool_calls,
                additional_kwargs=message.additional_kwargs,
                response_metadata=message.response_metadata,
                usage_metadata=message.usage_metadata,
                id=message.id,
            ),
            generation_info=result.generations[0].generation_info,
        )


def _json(args: dict) -> str:
    return json.dumps(args, ensure_ascii=False)


class RecordingChatModel(CassetteChatModel):
    """Passes every call to ``model`` and writes what it answers to the cassette."""

    model: BaseChatModel
    source: str | None = None  # what to call the recorded model in the header, e.g. its URI

    @property
    def _llm_type(self) -> str:
        return "stepwise-record"

    @property
    def tape(self) -> Cassette:
        if self._tape is None:
            with self._lock:
                if self._tape is None:
                    header = {"stepwise_cassette": FORMAT_VERSION,
                              "recorded_from": self.source or self.model._llm_type}
                    self._tape = Cassette(self.cassette, header)
        return self._tape

    def _split(self, stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[dict, dict]:
        """The keyed parameters, and the same minus ``stop`` to pass on to the wrapped model."""
        params = self._call_params(stop, kwargs)
        return params, {k: v for k, v in params.items() if k != "stop"}

    def _keep(self, messages: list[BaseMessage], params: dict, result: ChatResult) -> None:
        key, request = self._key(messages, params)
        self.tape.append(key, request, result)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params, call = self._split(stop, kwargs)
        result = self.model._generate(messages, stop=params.get("stop"), **call)
        self._keep(messages, params, result)
        return result

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        params, call = self._split(stop, kwargs)
        result = await self.model._agenerate(messages, stop=params.get("stop"), **call)
        self._keep(messages, params, result)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params, call = self._split(stop, kwargs)
        total: AIMessageChunk | None = None
        for chunk in self.model.stream(messages, stop=params.get("stop"), **call):
            assert isinstance(chunk, AIMessageChunk)
            total = chunk if total is None else total + chunk
            yield ChatGenerationChunk(message=chunk)
        if total is not None:
            message = AIMessage(**{k: v for k, v in total.model_dump().items()
                                   if k in AIMessage.model_fields and k not in
                                   ("type", "tool_call_chunks", "chunk_position")})
            self._keep(messages, params, ChatResult(generations=[ChatGeneration(message=message)]))


def record(model: BaseChatModel, cassette: str, **kwargs: Any) -> RecordingChatModel:
    """Wrap ``model`` so that everything it answers is written to ``cassette``."""
    return RecordingChatModel(model=model, cassette=str(cassette), **kwargs)
