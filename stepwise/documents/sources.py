"""Documents to translate, from a file, a folder of files, or a JSONL dataset.

- a file: one document, one sentence or paragraph per line; ``--ref`` a reference file;
- a folder: every ``*.<src>`` file is a document; ``name.<tgt>`` beside it is its
  reference (the layout of WMT-style document sets such as doc0.en / doc0.zh);
- ``*.jsonl``: rows ``{"id", "src", "ref"?, "src_lang", "tgt_lang", "world"?}`` with
  ``src`` and ``ref`` as text (lines joined by newlines) or lists of lines, as written by
  ``stepwise sim make``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator

from stepwise.documents.pages import read_lines
from stepwise.errors import StepwiseError
from stepwise.jsonl import jsonl_lines


class SourceDocument(BaseModel):
    id: str
    src: list[str]
    ref: list[str] | None = None
    src_lang: str
    tgt_lang: str
    world: str | None = None  # a simulated world that knows each page's best modules

    @field_validator("src", "ref", mode="before")
    @classmethod
    def _lines(cls, value: object) -> object:
        return value.split("\n") if isinstance(value, str) else value


def _row(line: str, number: int, path: Path, src: str | None, tgt: str | None) -> SourceDocument:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise StepwiseError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    if not isinstance(row, dict):
        raise StepwiseError(f"{path}:{number}: not a JSON object")
    row.setdefault("id", f"{path.stem}-{number}")
    for key, default in (("src_lang", src), ("tgt_lang", tgt)):
        if row.get(key) is None and default:
            row[key] = default
    try:
        return SourceDocument.model_validate(row)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise StepwiseError(f"{path}:{number}: {where}: {problem['msg']}") from None


def load_documents(path: str | Path, *, src: str | None = None, tgt: str | None = None,
                   ref: str | Path | None = None) -> list[SourceDocument]:
    """The documents at ``path``; languages from the rows or from ``src``/``tgt``."""
    path = Path(path)
    if not path.exists():
        raise StepwiseError(f"{path}: no such file or folder")
    if path.suffix == ".jsonl":
        lines = jsonl_lines(path.read_text(encoding="utf-8"))
        docs = [_row(line, i, path, src, tgt) for i, line in enumerate(lines, 1) if line.strip()]
        if not docs:
            raise StepwiseError(f"{path}: the dataset has no rows")
        return docs
    if not src or not tgt:
        raise StepwiseError("give the languages with --src and --tgt (e.g. --src en --tgt zh)")
    if path.is_dir():
        files = sorted(path.glob(f"*.{src}"))
        if not files:
            raise StepwiseError(f"{path}: no *.{src} files in this folder")
        if ref is not None:
            raise StepwiseError("--ref goes with a single document; in a folder the reference "
                                f"of name.{src} is name.{tgt} beside it")
        return [SourceDocument(id=f.stem, src=read_lines(f), src_lang=src, tgt_lang=tgt,
                               ref=read_lines(f.with_suffix(f".{tgt}"))
                               if f.with_suffix(f".{tgt}").is_file() else None)
                for f in files]
    return [SourceDocument(id=path.stem, src=read_lines(path), src_lang=src, tgt_lang=tgt,
                           ref=read_lines(ref) if ref is not None else None)]
