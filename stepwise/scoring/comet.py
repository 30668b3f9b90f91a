"""COMET scores from a worker process running in COMET's own Python environment.

unbabel-comet pins numpy<2 and transformers<5, which stepwise's environment cannot
satisfy, so the model runs in a separate interpreter (``--comet-python`` or
``STEPWISE_COMET_PYTHON``) executing ``comet_worker.py`` by file path; the two sides
speak JSON lines (protocol in that file). The model loads once per ``CometScorer``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from stepwise.scoring.errors import ScoringError

WORKER_SCRIPT = Path(__file__).with_name("comet_worker.py")
PYTHON_ENV_VAR = "STEPWISE_COMET_PYTHON"
CREATE_ENV = ("create one with: python3 -m venv .comet-venv && .comet-venv/bin/pip install "
              "unbabel-comet, then pass --comet-python .comet-venv/bin/python or set "
              f"{PYTHON_ENV_VAR}")
_EOF = None


@dataclass(frozen=True)
class CometResult:
    scores: list[float]  # one per segment, usually 0-1
    system_score: float | None  # their mean; None for no segments


def resolve_checkpoint(checkpoint: str | os.PathLike[str]) -> Path:
    """The model.ckpt file; a downloaded model folder is accepted for its checkpoints/."""
    path = Path(checkpoint).expanduser()
    if path.is_dir() and (path / "checkpoints" / "model.ckpt").is_file():
        return path / "checkpoints" / "model.ckpt"
    if not path.is_file():
        raise ScoringError(
            f"COMET needs a local checkpoint: {path} does not exist; download "
            "Unbabel/wmt22-comet-da where you have internet and pass its checkpoints/model.ckpt")
    return path


def resolve_python(python: str | os.PathLike[str] | None) -> Path:
    """The COMET environment's interpreter: the argument, else $STEPWISE_COMET_PYTHON."""
    chosen = python if python is not None else os.environ.get(PYTHON_ENV_VAR)
    if not chosen:
        raise ScoringError(f"COMET runs in its own Python environment and none was given; "
                           f"{CREATE_ENV}")
    path = Path(chosen).expanduser()
    if not path.exists() and os.sep not in str(chosen) and shutil.which(str(chosen)):
        path = Path(shutil.which(str(chosen)))
    if not path.exists():
        raise ScoringError(f"COMET python {path} does not exist; {CREATE_ENV}")
    return path


def check_comet_importable(python: Path, timeout: float = 300.0) -> None:
    """Fail early, and say how to fix it, when ``python`` cannot import comet."""
    try:
        done = subprocess.run([str(python), "-c", "import comet"], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except OSError as exc:
        raise ScoringError(f"cannot run COMET python {python}: {exc}; {CREATE_ENV}") from None
    except subprocess.TimeoutExpired:
        raise ScoringError(f"{python} took over {timeout:.0f} s to import comet") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise ScoringError(f"{python} cannot import comet ({reason}); {CREATE_ENV}")


class CometScorer:
    """A COMET model loaded once in a worker process; ``score`` sends it segments.

    Example::

        with CometScorer("wmt22-comet-da/checkpoints/model.ckpt", ".comet-venv/bin/python") as c:
            c.score(src=["Hello."], mt=["你好。"], ref=["您好。"]).system_score
    """

    def __init__(self, checkpoint: str | os.PathLike[str],
                 python: str | os.PathLike[str] | None = None, *, batch_size: int = 16,
                 gpus: int | None = None, timeout: float | None = 3600.0) -> None:
        self.checkpoint = resolve_checkpoint(checkpoint)
        self.python = resolve_python(python)
        check_comet_importable(self.python)
        self.timeout = timeout
        command = [str(self.python), str(WORKER_SCRIPT), str(self.checkpoint),
                   "--batch-size", str(batch_size), "--gpus", str(-1 if gpus is None else gpus)]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the worker
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        except OSError as exc:
            self._stderr.close()
            raise ScoringError(f"cannot start the COMET worker with {self.python}: {exc}") from None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            ready = self._receive()
        except ScoringError:
            self.close()
            raise
        if ready.get("ready") is not True:
            self.close()
            raise ScoringError(f"the COMET worker started with {ready!r} instead of ready")

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(_EOF)

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines()
                 if ln.strip()]
        return lines[-1].strip() if lines else "no message"

    def _receive(self) -> dict:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._process.kill()
            raise ScoringError(f"the COMET worker gave no answer in {self.timeout:.0f} s") \
                from None
        if line is _EOF:
            code = self._process.wait()
            raise ScoringError(f"the COMET worker exited (code {code}): {self._stderr_tail()}")
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            raise ScoringError(f"the COMET worker sent a line that is not JSON: "
                               f"{line.strip()[:200]!r}") from None
        if not isinstance(message, dict):
            raise ScoringError(f"the COMET worker sent {message!r}, not a JSON object")
        if "error" in message:
            raise ScoringError(f"COMET: {message['error']}")
        return message

    def score(self, src: Sequence[str], mt: Sequence[str],
              ref: Sequence[str] | None = None) -> CometResult:
        """Segment scores and their mean for aligned source, translation and reference."""
        if len(src) != len(mt) or (ref is not None and len(ref) != len(mt)):
            counts = f"{len(src)} source, {len(mt)} translated" + (
                f", {len(ref)} reference" if ref is not None else "")
            raise ScoringError(f"COMET needs aligned lines; got {counts}")
        if self._process.poll() is not None:
            raise ScoringError(f"the COMET worker is not running (code {self._process.returncode}"
                               f"): {self._stderr_tail()}")
        request = {"src": list(src), "mt": list(mt)}
        if ref is not None:
            request["ref"] = list(ref)
        try:
            self._process.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died: _receive reports its exit and last words
        answer = self._receive()
        scores = answer.get("scores")
        if not isinstance(scores, list) or len(scores) != len(mt):
            raise ScoringError(f"the COMET worker answered {len(mt)} segments with {scores!r}")
        return CometResult([float(s) for s in scores], answer.get("system_score"))

    def close(self) -> None:
        """End the worker (closing its stdin lets it exit by itself first)."""
        if self._process.poll() is None:
            try:
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=10)
        if not self._reader.is_alive():
            self._process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
