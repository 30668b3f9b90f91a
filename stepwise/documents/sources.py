"""Documents to translate, from a file, a folder of files, or a JSONL dataset.

- a file: one document, one sentence or paragraph per line; ``--ref`` a reference file;
- a folder: every ``*.<src>`` file is a document; ``name.<tgt>`` beside it is its
  reference (the layout of WMT-style document sets such as doc0.en / doc0.zh);
- a folder holding ``dataset.jsonl`` (what ``stepwise sim make --out DIR`` writes) is that
  dataset, unless ``--src`` is given and the folder has ``*.<src>`` files;
- ``*.jsonl``: rows ``{"id", "src", "ref"?, "src_lang", "tgt_lang", "world"?}`` with
  ``src`` and ``ref`` as text (lines joined by newlines) or lists of lines, as written by
  ``stepwise sim make``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator

from stepwise.documents.pages import read_lines
from stepwise.errors import StepwiseError
from stepwise.jsonl import read_jsonl

DATASET_FILE = "dataset.jsonl"  # a dataset folder's rows, as stepwise sim make writes them


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


def _row(row: dict, number: int, path: Path, src: str | None, tgt: str | None) -> SourceDocument:
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


def file_name(doc_id: str) -> str:
    """The name a document's files get where a run names them by id: explore's trees and
    event logs (the same mapping as ``stepwise.search.run.safe_name``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)


def _unsafe_id(doc_id: str) -> str | None:
    """Why ``doc_id`` cannot name files inside an output folder, or None: translate writes
    ``<id>.<tgt>`` and its trace beside it, so ``..`` or a leading ``/`` would write
    elsewhere."""
    if not doc_id.strip():
        return "is empty"
    if "\0" in doc_id:
        return "holds a NUL character"
    if doc_id.startswith(("/", "\\")):
        return "starts with a slash"
    if ".." in doc_id.replace("\\", "/").split("/"):
        return "has a '..' part"
    return None


def _check_ids(path: Path, docs: list[SourceDocument], where: list[str]) -> None:
    """Refuse ids that would mix two documents up: a repeated id (one would never be
    translated, the other scored against both references) or two ids that become the same
    file name (one tree file for both), and ids that could escape the output folder.
    ``where`` says where each document came from (``line 3``, a file name)."""
    seen: dict[str, int] = {}
    named: dict[str, int] = {}
    for index, doc in enumerate(docs):
        if (why := _unsafe_id(doc.id)) is not None:
            raise StepwiseError(f"{path}: {where[index]}: id {doc.id!r} {why}, and an id names "
                                "the document's output files; give it a plain name")
        if (first := seen.setdefault(doc.id, index)) != index:
            raise StepwiseError(f"{path}: {where[first]} and {where[index]} have the same id "
                                f"{doc.id!r}; each document needs its own id")
        name = file_name(doc.id)
        if (first := named.setdefault(name, index)) != index:
            raise StepwiseError(f"{path}: {where[first]} and {where[index]} have ids "
                                f"{docs[first].id!r} and {doc.id!r}, which both become the file "
                                f"name {name!r}; give ids that differ in letters or digits")


def dataset_path(path: Path, src: str | None = None) -> Path:
    """Where the documents at ``path`` are read from: a folder's ``dataset.jsonl`` when it
    has one (the folder ``stepwise sim make --out`` names), unless ``src`` is given and the
    folder holds ``*.<src>`` documents; else ``path`` itself."""
    if not path.exists():
        raise StepwiseError(f"{path}: no such file or folder")
    dataset = path / DATASET_FILE
    if path.is_dir() and dataset.is_file() and not (src and any(path.glob(f"*.{src}"))):
        return dataset
    return path


def load_documents(path: str | Path, *, src: str | None = None, tgt: str | None = None,
                   ref: str | Path | None = None) -> list[SourceDocument]:
    """The documents at ``path``; languages from the rows or from ``src``/``tgt``."""
    path = dataset_path(Path(path), src)
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
        docs = [_row(row, number, path, src, tgt) for number, row in rows]
        if not docs:
            raise StepwiseError(f"{path}: the dataset has no rows")
        _check_ids(path, docs, [f"line {number}" for number, _ in rows])
        return docs
    if not src or not tgt:
        if path.is_dir():
            raise StepwiseError(f"{path}: no {DATASET_FILE} in this folder; for a folder of "
                                "*.<src> files give the languages with --src and --tgt (e.g. "
                                "--src en --tgt zh)")
        raise StepwiseError("give the languages with --src and --tgt (e.g. --src en --tgt zh)")
    if path.is_dir():
        files = sorted(path.glob(f"*.{src}"))
        if not files:
            raise StepwiseError(f"{path}: no *.{src} files and no {DATASET_FILE} in this folder")
        if ref is not None:
            raise StepwiseError("--ref goes with a single document; in a folder the reference "
                                f"of name.{src} is name.{tgt} beside it")
        docs = [SourceDocument(id=f.stem, src=read_lines(f), src_lang=src, tgt_lang=tgt,
                               ref=read_lines(f.with_suffix(f".{tgt}"))
                               if f.with_suffix(f".{tgt}").is_file() else None)
                for f in files]
        _check_ids(path, docs, [f.name for f in files])
        return docs
    return [SourceDocument(id=path.stem, src=read_lines(path), src_lang=src, tgt_lang=tgt,
                           ref=read_lines(ref) if ref is not None else None)]
