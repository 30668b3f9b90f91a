"""COMET worker: run by file path with the COMET environment's own python (stdlib + comet).

unbabel-comet pins numpy<2 and transformers<5, so it cannot live in stepwise's
environment; ``stepwise.scoring.comet.CometScorer`` starts this script with the other
interpreter and speaks JSON lines with it:

    started as:  python comet_worker.py CHECKPOINT [--batch-size N] [--gpus N]
    first line:  {"ready": true}                 or {"error": "..."} and exit 1
    request:     {"src": [...], "mt": [...], "ref": [...]}    ("ref" may be left out)
    response:    {"scores": [...], "system_score": x}         or {"error": "..."}

Stdout carries only these lines: everything else that writes to it (comet, lightning,
C libraries) is sent to stderr. The worker exits when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Run by path, this script's folder comes first on sys.path, and it holds stepwise's own
# comet.py, which would shadow the comet package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]


def _protocol_channel():
    """The real stdout for JSON lines; file descriptor 1 and sys.stdout now go to stderr."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _send(channel, message: dict) -> None:
    channel.write(json.dumps(message, ensure_ascii=False) + "\n")
    channel.flush()


def _samples(request: object) -> list[dict]:
    if not isinstance(request, dict):
        raise TypeError("a request must be a JSON object with src, mt and ref lists")
    fields = [name for name in ("src", "mt", "ref") if name in request]
    if "src" not in fields or "mt" not in fields:
        raise ValueError("a request needs 'src' and 'mt' lists")
    columns = {name: request[name] for name in fields}
    for name, column in columns.items():
        if not isinstance(column, list) or not all(isinstance(x, str) for x in column):
            raise ValueError(f"'{name}' must be a list of strings")
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"src, mt and ref differ in length: {lengths}")
    return [dict(zip(fields, row)) for row in zip(*columns.values())]


def _default_gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return 1 if torch.cuda.is_available() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="COMET scoring over JSON lines")
    parser.add_argument("checkpoint")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gpus", type=int, default=-1, help="-1: one if CUDA is available")
    arguments = parser.parse_args()
    channel = _protocol_channel()
    sys.stdin.reconfigure(encoding="utf-8")
    try:
        from comet import load_from_checkpoint

        model = load_from_checkpoint(arguments.checkpoint)
    except Exception as exc:  # noqa: BLE001 -- reported to the client, which raises it
        _send(channel, {"error": f"cannot load COMET checkpoint {arguments.checkpoint}: "
                                 f"{type(exc).__name__}: {exc}"})
        return 1
    gpus = _default_gpus() if arguments.gpus < 0 else arguments.gpus
    _send(channel, {"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            samples = _samples(json.loads(line))
            if not samples:
                _send(channel, {"scores": [], "system_score": None})
                continue
            prediction = model.predict(samples, batch_size=arguments.batch_size, gpus=gpus,
                                       progress_bar=False)
            _send(channel, {"scores": [float(s) for s in prediction.scores],
                            "system_score": float(prediction.system_score)})
        except Exception as exc:  # noqa: BLE001 -- one bad request must not end the worker
            _send(channel, {"error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
