"""langchain's standard unit suite for each backend."""

from __future__ import annotations

from langchain_tests.unit_tests import ChatModelUnitTests

from stepwise.llm import HFChatModel, OpenAICompatChatModel, ReplayChatModel
from stepwise.llm.tiny import tiny_model_path

from .conftest import REPO


class TestOpenAICompatStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self):
        return OpenAICompatChatModel

    @property
    def chat_model_params(self):
        return {"base_url": "http://127.0.0.1:9/v1", "model": "test-model"}

    @property
    def init_from_env_params(self):
        return (
            {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "secret"},
            {"model": "test-model"},
            {"base_url": "http://127.0.0.1:9/v1", "api_key": "secret"},
        )


class TestHFStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self):
        return HFChatModel

    @property
    def chat_model_params(self):
        return {"model_path": str(tiny_model_path(0))}


class TestReplayStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self):
        return ReplayChatModel

    @property
    def chat_model_params(self):
        return {"cassette": str(REPO / "scenarios" / "cassettes" / "chat-echo.jsonl")}
