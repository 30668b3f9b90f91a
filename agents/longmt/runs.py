"""Running LongMT policies over documents: the engine ``stepwise translate`` and the
training loop's held-out rows share.

Per policy (a row label and its agent) every document is translated and scored. With a run
folder, each finished document is written there (translation, step trace, memory and a
``<doc>.done.json`` with the settings), a rerun with the same settings keeps it, a rerun
with other settings is refused before anything runs (naming the document and the first
setting that differs; ``fresh`` redoes it), and ``scores.json`` holds every row; the
folder takes one writer at a time. A document whose
model fails (``MODEL_ERRORS`` or another ``StepwiseError``) is one failed document, its
trace up to the failed page step kept in ``<doc>.failed.trace.jsonl``; the others go on.
Any other exception is a bug in stepwise and ends the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stepwise.agents.longmt.evaluate import DocOutcome, document_scores, policy_scores
from stepwise.errors import MODEL_ERRORS, StepwiseError, error_line
from stepwise.run_settings import as_saved, first_difference, shown

if TYPE_CHECKING:
    from stepwise.agents.longmt.agent import LongMTAgent, TranslationResult
    from stepwise.agents.longmt.policies import Oracle
    from stepwise.documents.pages import Document
    from stepwise.documents.sources import SourceDocument

LOCK_NAME = "translate.lock"  # one translate writes a run folder at a time
SCORES_FILE = "scores.json"


def policy_folder(policy: str) -> str:
    """A folder name for a policy: ``only:entities`` -> ``only-entities``."""
    name = policy.replace(":", "-").replace("+", "_").replace(";", ".")
    if len(name) > 40:
        name = "fixed-" + hashlib.sha256(policy.encode()).hexdigest()[:10]
    return name


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class RunFolder:
    """Where one policy's documents go, and which of them are already finished."""

    def __init__(self, root: Path, policy: str, settings: dict[str, Any]) -> None:
        self.folder = root / policy_folder(policy)
        self.settings = settings

    def finished(self, doc_id: str) -> dict | None:
        """The record of ``doc_id`` when it is finished here, else None; one finished with
        other settings is refused, naming the first that differs, for ``--fresh`` to redo."""
        done = self.folder / f"{doc_id}.done.json"
        if not done.is_file():
            return None
        try:
            record = json.loads(done.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        saved = record.get("settings") if isinstance(record, dict) else None
        found = first_difference(saved if isinstance(saved, dict) else {},
                                 as_saved(self.settings))
        if found is not None:
            key, before, now = found
            raise StepwiseError(f"{done}: {doc_id} was translated with other settings ({key}: "
                                f"saved {shown(before)}, asked {shown(now)}); --fresh redoes "
                                "it, or use another --out or the same options")
        return record

    def failed_trace(self, doc_id: str) -> Path:
        return self.folder / f"{doc_id}.failed.trace.jsonl"

    def write_failed(self, doc_id: str, steps: list[dict]) -> None:
        """The trace of a document stopped by a failed page step: its pages up to that step."""
        from stepwise.files import write_atomic

        write_atomic(self.failed_trace(doc_id), _jsonl(steps))

    def write(self, result: TranslationResult, scores: dict) -> dict:
        from stepwise.files import write_atomic

        self.failed_trace(result.doc_id).unlink(missing_ok=True)  # an earlier try's, now redone
        stem = self.folder / result.doc_id
        write_atomic(stem.with_name(f"{result.doc_id}.{result.tgt}"), "\n".join(result.lines) + "\n")
        write_atomic(stem.with_name(f"{result.doc_id}.trace.jsonl"), _jsonl(result.steps))
        write_atomic(stem.with_name(f"{result.doc_id}.memory.json"),
                     json.dumps(result.memory.to_dict(), ensure_ascii=False, indent=1))
        record = {"settings": self.settings, "doc": result.doc_id, "lines": result.lines,
                  "totals": result.totals(), "scores": scores}
        write_atomic(stem.with_name(f"{result.doc_id}.done.json"),  # last: marks it finished
                     json.dumps(record, ensure_ascii=False, indent=1))
        return record


@dataclass(frozen=True)
class DocumentDone:
    """One policy's document, finished: translated now, kept from an earlier run, or failed.

    ``on_document`` is called while a failure is being handled (``exc`` set), so that a
    caller may print its traceback, or raise to stop the run."""

    label: str
    document: SourceDocument
    status: Literal["translated", "kept", "failed"]
    pages: int  # the document's pages, as paged before the run
    pages_run: int  # page steps run in this call (0 when kept)
    result: TranslationResult | None = None  # when translated
    error: str | None = None  # when failed: its one line
    exc: BaseException | None = None


@dataclass
class PolicyRun:
    """One row of the compare table, with its documents' scores and failures."""

    row: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # doc id -> error line


@dataclass
class CompareReport:
    """Every policy's run, by row label, in the order run."""

    policies: dict[str, PolicyRun]

    @property
    def rows(self) -> dict[str, dict[str, Any]]:
        return {label: run.row for label, run in self.policies.items()}

    @property
    def failed(self) -> int:
        return sum(len(run.failed) for run in self.policies.values())

    def to_json(self) -> dict[str, Any]:
        """What ``scores.json`` holds."""
        return {label: {"overall": run.row, "documents": run.documents, "failed": run.failed}
                for label, run in self.policies.items()}


def page_documents(agent: LongMTAgent, documents: Sequence[SourceDocument]
                   ) -> dict[str, Document]:
    """Every document paged as ``agent`` pages it; one that cannot be is named."""
    pages = {}
    for doc in documents:
        try:
            pages[doc.id] = agent.paginate(doc.src, doc.src_lang)
        except StepwiseError as exc:
            raise StepwiseError(f"{doc.id}: {exc}") from None
    return pages


def compare_policies(
        agents: Mapping[str, LongMTAgent], documents: Sequence[SourceDocument],
        out_dir: Path | None, *, settings: Mapping[str, dict[str, Any]] | None = None,
        fresh: bool = False, simulated: bool = False,
        pages: Mapping[str, Document] | None = None,
        oracle_for: Callable[[SourceDocument], Oracle | None] | None = None,
        on_start: Callable[[str, str], None] | None = None,
        on_page: Callable[[str, str], None] | None = None,
        on_document: Callable[[DocumentDone], None] | None = None) -> CompareReport:
    """Each agent (by row label) over ``documents``, scored per document and per policy.

    With ``out_dir``, under its one-writer lock: a document finished there with the label's
    ``settings`` is kept unless ``fresh``, every other one is written, and so is
    ``scores.json``; without it nothing is written or kept. ``pages``: the documents as
    already paged (default: paged by the first agent). ``oracle_for`` gives each document's
    world knowledge; ``simulated`` marks every row. ``on_start(label, doc_id)`` and
    ``on_page(label, doc_id)`` say how far the run is; ``on_document`` sees each finished
    document."""
    if pages is None:
        pages = page_documents(next(iter(agents.values())), documents) if agents else {}
    if out_dir is None:
        return _run(agents, documents, None, settings or {}, fresh, simulated, pages,
                    oracle_for, on_start, on_page, on_document)
    from stepwise.files import write_atomic
    from stepwise.run_lock import lock_run

    with lock_run(out_dir, LOCK_NAME, "translate", "wait for it to finish or use another --out",
                  shared_in_thread=True):  # shared with a command that took it first
        report = _run(agents, documents, out_dir, settings or {}, fresh, simulated, pages,
                      oracle_for, on_start, on_page, on_document)
        write_atomic(out_dir / SCORES_FILE,
                     json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    return report


def _run(agents: Mapping[str, LongMTAgent], documents: Sequence[SourceDocument],
         out_dir: Path | None, settings: Mapping[str, dict[str, Any]], fresh: bool,
         simulated: bool, pages: Mapping[str, Document],
         oracle_for: Callable[[SourceDocument], Oracle | None] | None,
         on_start: Callable[[str, str], None] | None,
         on_page: Callable[[str, str], None] | None,
         on_document: Callable[[DocumentDone], None] | None) -> CompareReport:
    """``compare_policies``' work, under its lock when it has a folder."""
    from stepwise.agents.longmt.page_steps import PageStepFailed

    def done(event: DocumentDone) -> None:
        if on_document is not None:
            on_document(event)

    folders = {label: RunFolder(out_dir, label, settings.get(label, {}))
               for label in agents} if out_dir is not None else {}
    if not fresh:  # a document finished with other settings stops the run before it starts
        for folder in folders.values():
            for doc in documents:
                folder.finished(doc.id)
    report = CompareReport({})
    for label, agent in agents.items():
        folder = folders.get(label)
        outcomes: list[DocOutcome] = []
        run = PolicyRun({})
        for doc in documents:
            if on_start is not None:
                on_start(label, doc.id)
            paged = pages[doc.id]
            record = None if fresh or folder is None else folder.finished(doc.id)
            if record is not None:
                done(DocumentDone(label, doc, "kept", len(paged.pages), 0))
            else:
                agent.oracle = oracle_for(doc) if oracle_for is not None else None
                pages_run = [0]

                def stepped(_step: Any, doc_id: str = doc.id, pages_run: list[int] = pages_run,
                            label: str = label) -> None:
                    pages_run[0] += 1
                    if on_page is not None:
                        on_page(label, doc_id)

                try:
                    result = agent.translate(paged, src=doc.src_lang, tgt=doc.tgt_lang,
                                             doc_id=doc.id, on_page=stepped)
                except (StepwiseError, *MODEL_ERRORS) as exc:  # one document; a bug raises
                    if isinstance(exc, PageStepFailed) and folder is not None:
                        folder.write_failed(doc.id, exc.steps)
                    run.failed[doc.id] = error_line(exc)
                    done(DocumentDone(label, doc, "failed", len(paged.pages), pages_run[0],
                                      error=run.failed[doc.id], exc=exc))
                    continue
                outcome = DocOutcome(doc.id, doc.tgt_lang, result.lines, result.totals(),
                                     doc.ref)
                scores = document_scores(outcome)
                record = (folder.write(result, scores) if folder is not None else
                          {"lines": result.lines, "totals": result.totals(), "scores": scores})
                done(DocumentDone(label, doc, "translated", len(paged.pages), pages_run[0],
                                  result=result))
            outcomes.append(DocOutcome(doc.id, doc.tgt_lang, record["lines"],
                                       record["totals"], doc.ref))
            run.documents[doc.id] = {**record["scores"], **record["totals"]}
        run.row = policy_scores(outcomes) | ({"simulated": True} if simulated else {})
        if run.failed:
            run.row["failed_documents"] = run.failed
        report.policies[label] = run
    return report
