"""Where local models run: --device and --dtype, resolved to the GPU when there is one."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import CallOptions, model_from_uri
from stepwise.errors import StepwiseError
from stepwise.llm.hf import HFChatModel, resolve_device, resolve_dtype
from stepwise.llm.openai_compat import OpenAICompatChatModel
from stepwise.llm.tiny import tiny_model_path
from stepwise.train.dpo import DPOSettings

no_gpu = pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                            reason="checks the default on a machine without a GPU")


@pytest.fixture
def without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two CUDA GPUs, as far as resolution can tell (nothing is placed)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


def one_error_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1, done.stderr
    assert "Traceback" not in done.output + done.stderr
    return lines[0]


@no_gpu
def test_the_default_is_the_cpu_on_a_machine_without_a_gpu():
    assert resolve_device() == resolve_device("auto") == "cpu"
    assert resolve_dtype("auto", "cpu") is torch.float32
    model = model_from_uri("tiny", None)
    assert model.device == "auto" and resolve_device(model.device) == "cpu"


def test_a_gpu_is_the_default_when_there_is_one_in_bfloat16_where_it_computes_in_it(two_gpus,
                                                                                   monkeypatch):
    assert resolve_device("auto") == "cuda" and resolve_device("CUDA:1") == "cuda:1"
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("float16", "cuda") is torch.float16
    assert resolve_dtype("auto", "cpu") is torch.float32  # --device cpu on a GPU machine
    with pytest.raises(StepwiseError, match="2 CUDA GPU"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert resolve_dtype("auto", "cuda:1") is torch.float32


def test_apples_gpu_comes_after_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps" and resolve_device("mps") == "mps"
    assert resolve_dtype("auto", "mps") is torch.float32


def test_unknown_devices_and_dtypes_are_named():
    for device in ("gpu", "cuda:x", "cpu:0"):
        with pytest.raises(StepwiseError, match="unknown"):
            resolve_device(device)
    with pytest.raises(StepwiseError, match="float8"):
        resolve_dtype("float8", "cpu")


def test_an_explicit_device_and_dtype_place_the_weights():
    model = HFChatModel(model_path=str(tiny_model_path()), device="cpu", dtype="bfloat16",
                        max_tokens=2)
    model.invoke("hi")
    assert model.hf_model.device.type == "cpu" and model.hf_model.dtype is torch.bfloat16


def test_ask_runs_the_tiny_model_on_the_device_it_is_given():
    done = CliRunner().invoke(app, ["ask", "hi", "--model", "tiny", "--device", "cpu",
                                    "--dtype", "float32", "--max-tokens", "4"])
    assert done.exit_code == 0, done.stderr
    assert "warning" not in done.stderr


def test_a_missing_gpu_is_one_error_line(without_gpu):
    done = CliRunner().invoke(app, ["ask", "hi", "--model", "tiny", "--device", "cuda"])
    assert "no CUDA GPU" in one_error_line(done)
    done = CliRunner().invoke(app, ["ask", "hi", "--model", "tiny", "--device", "mps"])
    assert "no MPS" in one_error_line(done)


def test_training_on_a_missing_gpu_is_one_error_line(without_gpu, tmp_path):
    done = CliRunner().invoke(app, ["train", "dpo", "--pairs", str(tmp_path / "pairs.jsonl"),
                                    "--model", "tiny", "--out", str(tmp_path / "out"),
                                    "--device", "cuda:0"])
    assert "no CUDA GPU" in one_error_line(done)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_an_unknown_dtype_is_one_error_line():
    done = CliRunner().invoke(app, ["ask", "hi", "--model", "tiny", "--dtype", "float8"])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.exit_code == 2 and "Traceback" not in done.output + done.stderr
    assert len(errors) == 1 and "'--dtype'" in errors[0] and "float8" in errors[0]


def test_other_backends_ignore_the_device_without_a_warning(capsys):
    calls = CallOptions.from_cli(64, None, None, None, None, None, "cpu", "float32")
    kwargs, dropped = calls.model_kwargs(OpenAICompatChatModel.model_fields)
    assert "device" not in kwargs and dropped == []
    assert model_from_uri("sim:translator", None, calls) is not None
    tiny = model_from_uri("tiny", None, calls)
    assert tiny.device == "cpu" and tiny.dtype == "float32"
    assert "warning" not in capsys.readouterr().err


def test_the_training_device_is_not_a_saved_setting():
    """A loop or a training run resumes on another machine."""
    assert "device" not in DPOSettings(device="cpu").model_dump()
    assert DPOSettings(device="cpu").model_copy(update={"seed": 1}).device == "cpu"
