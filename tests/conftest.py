"""Shared fixtures. The tiny model is built once per test session into a private cache."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# pytest-xdist's workers inherit COLUMNS=80 and LINES=24; a rich Console made at import would
# keep that width for good, and tests that run a command at another COLUMNS would see 80.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)

from stepwise.llm.named_models import cache_root

# Where `stepwise models get smollm2` put the real model: read before the override below.
# pytest-xdist's workers inherit the override below from the controller, so the controller
# passes the user's cache on to them by name.
USER_CACHE = Path(os.environ.setdefault("STEPWISE_TEST_USER_CACHE", str(cache_root())))
# Before anything builds a tiny model: keep the test session's copy out of the user's cache,
# and remove it when the session ends (only the folder made here, never one given).
if "STEPWISE_CACHE" not in os.environ:
    os.environ["STEPWISE_CACHE"] = tempfile.mkdtemp(prefix="stepwise-test-cache-")
    atexit.register(shutil.rmtree, os.environ["STEPWISE_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parent.parent


def short_dataset(folder: Path, lines: int = 8, seed: int = 0) -> Path:
    """One simulated document (of world seed ``seed``) cut to its first ``lines``
    sentences, as ``folder``'s dataset.jsonl: a search of it takes well under a second."""
    import json

    from stepwise.sim.translation.world import make_documents, write_dataset

    row = json.loads(write_dataset(make_documents(1, seed), folder).read_text("utf-8"))
    row["src"], row["ref"] = (row[key].split("\n")[:lines] for key in ("src", "ref"))
    (folder / "dataset.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    return folder / "dataset.jsonl"


def json_objects(text: str) -> list:
    """The JSON objects printed one after another (``stepwise replay --json``: one per
    scenario, each pretty-printed over several lines)."""
    import json

    decoder, text, objects = json.JSONDecoder(), text.strip(), []
    while text:
        value, end = decoder.raw_decode(text)
        objects.append(value)
        text = text[end:].strip()
    return objects


# The real parallel documents live beside the repository (../shared/data); tests that read
# them skip where they are absent. STEPWISE_SHARED_DATA points elsewhere.
WMT_DOCS = Path(os.environ.get("STEPWISE_SHARED_DATA", REPO.parent / "shared" / "data")
                ) / "wmt24pp-en-zh"


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    from stepwise.llm.tiny import tiny_model_path

    return tiny_model_path(0)


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct folder; tests using it are marked ``real_model``.

    Absent, they skip; with ``STEPWISE_REQUIRE_REAL_MODEL=1`` (CI's real-model run) they fail,
    so a run in which every real-model test skipped cannot pass for one that tested it."""
    path = USER_CACHE / "models" / "smollm2"
    if not (path / "stepwise-model.json").exists():
        missing = f"the real model is not in {USER_CACHE}: run `stepwise models get smollm2`"
        if os.environ.get("STEPWISE_REQUIRE_REAL_MODEL") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    return path


@pytest.fixture()
def server():
    from stepwise.testing.openai_server import OpenAITestServer

    with OpenAITestServer() as running:
        yield running
