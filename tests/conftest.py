"""Shared fixtures. The tiny model is built once per test session into a private cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything builds a tiny model: keep the test session's copy out of the user's cache.
os.environ.setdefault("STEPWISE_CACHE", tempfile.mkdtemp(prefix="stepwise-test-cache-"))

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    from stepwise.llm.tiny import tiny_model_path

    return tiny_model_path(0)


@pytest.fixture()
def server():
    from stepwise.testing.openai_server import OpenAITestServer

    with OpenAITestServer() as running:
        yield running
