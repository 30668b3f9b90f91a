"""``stepwise eval``: score translation files against references, as one JSON object.

Line-level scores (BLEU, chrF, COMET) need hypothesis and reference lines aligned; a
document-level score (d-BLEU) does not. When lines do not align, the command says so
and still reports what can be scored, rather than failing a long evaluation outright.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stepwise.cli.common import app, cli_errors, err, state
from stepwise.cli.wording import plural

Documents = dict[str, list[str]]  # document name -> its lines


def read_lines(path: Path, role: str) -> list[str]:
    """A UTF-8 text file's lines, without line ends (one segment per line)."""
    from stepwise.scoring import ScoringError

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ScoringError(f"{role} file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ScoringError(f"{role} file {path} is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    except OSError as exc:
        raise ScoringError(f"cannot read {role} file {path}: {exc.strerror}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_documents(path: Path, role: str) -> Documents:
    """A file as one document, or a folder's files (sorted by name) as documents."""
    from stepwise.scoring import ScoringError

    if not path.exists():
        raise ScoringError(f"{role} not found: {path}")
    if not path.is_dir():
        return {path.name: read_lines(path, role)}
    names = sorted(p.name for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not names:
        raise ScoringError(f"{role} folder {path} holds no files")
    return {name: read_lines(path / name, role) for name in names}


def read_matching(path: Path, role: str, hyp_path: Path, hyps: Documents) -> Documents:
    """References or sources laid out like the hypotheses, keyed by the hypotheses' names."""
    from stepwise.scoring import ScoringError

    if not path.exists():
        raise ScoringError(f"{role} not found: {path}")
    if path.is_dir() != hyp_path.is_dir():
        kinds = ("a folder" if hyp_path.is_dir() else "a file",
                 "a folder" if path.is_dir() else "a file")
        raise ScoringError(f"the hypothesis is {kinds[0]} but the {role} is {kinds[1]}: "
                           "give files for both or folders for both")
    if not path.is_dir():
        return {next(iter(hyps)): read_lines(path, role)}
    missing = [name for name in hyps if not (path / name).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ScoringError(f"{role} folder {path} has no file named {', '.join(missing[:3])}"
                           f"{more}")
    return {name: read_lines(path / name, role) for name in hyps}


def read_glossary(path: Path) -> dict[str, str]:
    from stepwise.scoring import ScoringError

    try:
        glossary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoringError(f"glossary file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoringError(f"cannot read glossary {path}: {exc}") from None
    if not isinstance(glossary, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in glossary.items()):
        raise ScoringError(f'glossary {path} must be a JSON object of source term -> target '
                           'term, e.g. {"Thraki": "斯拉克人"}')
    return glossary


def _mismatches(hyp: Documents, other: Documents) -> list[str]:
    return [f"{name} ({len(hyp[name])} vs {plural(len(other[name]), 'line')})"
            for name in hyp if len(hyp[name]) != len(other[name])]


def _lines(documents: Documents) -> list[str]:
    return [line for lines in documents.values() for line in lines]


@app.command("eval")
@cli_errors
def eval_command(
    hyp: Annotated[Path, typer.Option("--hyp", help="Translations: a text file, one segment "
                                      "per line, or a folder of them (one document each).")],
    ref: Annotated[Path, typer.Option("--ref", help="References, laid out like --hyp "
                                      "(same file names in a folder).")],
    tgt_lang: Annotated[str, typer.Option("--tgt-lang", help="Target language code (en, zh, "
                                          "zh-CN, ja ...): picks BLEU's tokenizer.")],
    src: Annotated[Path | None, typer.Option("--src", help="Sources, laid out like --hyp; "
                                             "needed by --comet and --glossary.")] = None,
    comet: Annotated[Path | None, typer.Option("--comet", help="A local COMET checkpoint "
                                               "(.../checkpoints/model.ckpt).")] = None,
    comet_python: Annotated[Path | None, typer.Option(
        "--comet-python", help="Python of an environment with unbabel-comet "
        "(default: $STEPWISE_COMET_PYTHON).")] = None,
    glossary: Annotated[Path | None, typer.Option("--glossary", help="A JSON object of "
                                                  "source term -> target term.")] = None,
) -> None:
    """Score translations: corpus BLEU and chrF over lines, d-BLEU over documents.

    Prints one JSON object: bleu, d_bleu, chrf, lines, documents, tokenize;
    comet and term_accuracy too when asked for.
    A file is one document; folders pair their files by name.
    If line counts differ from the reference, only d_bleu is scored (with a warning).

    Example: [bold]stepwise eval --hyp out/ --ref refs/ --tgt-lang zh[/bold]
    """
    from stepwise.scoring import (
        CometScorer,
        ScoringError,
        corpus_bleu,
        corpus_chrf,
        document_bleu,
        term_accuracy,
        tokenizer_for,
    )
    from stepwise.scoring.comet import resolve_checkpoint, resolve_python

    tokenize = tokenizer_for(tgt_lang)
    if (comet or glossary) and src is None:
        raise ScoringError(f"{'--comet' if comet else '--glossary'} needs --src, the source "
                           "lines the translations came from")
    if comet is not None:  # fail before scoring anything, not after
        resolve_checkpoint(comet)
        resolve_python(comet_python)
    hyps = read_documents(hyp, "hypothesis")
    refs = read_matching(ref, "reference", hyp, hyps)
    for role, documents in (("hypothesis", hyps), ("reference", refs)):
        for name, lines in documents.items():
            if not any(line.strip() for line in lines):
                raise ScoringError(f"{role} {name} is empty: nothing to score")
    sources: Documents | None = None
    if src is not None:
        sources = read_matching(src, "source", hyp, hyps)
        unaligned = _mismatches(hyps, sources)
        if unaligned:
            raise ScoringError(f"source and hypothesis lines differ in {unaligned[0]}: "
                               "--src must hold the lines that were translated")
    terms = read_glossary(glossary) if glossary else None

    hyp_lines, ref_lines = _lines(hyps), _lines(refs)
    d_bleu = document_bleu(list(hyps.values()), list(refs.values()), tgt_lang)
    result: dict = {"bleu": None, "d_bleu": round(d_bleu, 4), "chrf": None,
                    "lines": len(hyp_lines), "documents": len(hyps), "tokenize": tokenize}
    unaligned = _mismatches(hyps, refs)
    if unaligned:
        warning = (f"hypothesis and reference line counts differ in {len(unaligned)} of "
                   f"{plural(len(hyps), 'document')}, first {unaligned[0]}: line-level scores "
                   "skipped, d_bleu only")
        result["warning"] = warning
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False,
                  soft_wrap=True)
    else:
        result["bleu"] = round(corpus_bleu(hyp_lines, ref_lines, tgt_lang), 4)
        result["chrf"] = round(corpus_chrf(hyp_lines, ref_lines), 4)
    if terms is not None and sources is not None:
        accuracy = term_accuracy(hyp_lines, _lines(sources), terms)
        result["term_accuracy"] = round(accuracy.score, 4)
        result["term_occurrences"] = accuracy.occurrences
    if comet is not None and sources is not None:
        result["comet"] = None
        if not unaligned:
            if not state["quiet"]:
                err.print("[dim]loading COMET in its own environment...[/dim]")
            with CometScorer(comet, comet_python) as scorer:
                scored = scorer.score(_lines(sources), hyp_lines, ref_lines)
            result["comet"] = round(scored.system_score, 4)
    typer.echo(json.dumps(result, ensure_ascii=False))
