"""``stepwise pages``: how a document splits into sentences and pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import app, cli_errors, out
from stepwise.cli.tables import ReadableTable, number
from stepwise.cli.wording import plural
from stepwise.errors import StepwiseError


@app.command()
@cli_errors
def pages(
    document: Annotated[Path, typer.Argument(help="A UTF-8 text file, one sentence or "
                                             "paragraph per line.")],
    lang: Annotated[str | None, typer.Option(help="Its language code (en, zh, ...); default: "
                                             "the file's suffix, as in doc0.zh.")] = None,
    page_sentences: Annotated[int | None, typer.Option(min=1, help="Most sentences per page."
                                                       )] = 10,
    max_chars: Annotated[int | None, typer.Option(min=1, help="Most characters per page (a "
                                                  "longer sentence gets a page of its own).")
                         ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="An array of pages, each with its "
                                          "sentences.")] = False,
) -> None:
    """Split a document into sentences and pages, and show them.

    A page never splits a sentence, and the pages joined give the document back.
    Example: [bold]stepwise pages scenarios/longmt/data/doc0.zh --page-sentences 8[/bold]
    """
    from stepwise.documents import paginate, read_lines

    lang = lang or document.suffix.lstrip(".")
    if not lang:
        raise StepwiseError(f"{document}: give its language with --lang (e.g. --lang en)")
    doc = paginate(read_lines(document), lang, page_sentences=page_sentences,
                   max_chars=max_chars)
    if as_json:
        out.print_json(json.dumps([{"page": p.number, "sentences": p.lines, "chars": p.chars}
                                   for p in doc.pages], ensure_ascii=False))
        return
    sentences = sum(len(p.lines) for p in doc.pages)
    title = (f"{document}: {plural(len(doc.lines), 'line')}, {plural(sentences, 'sentence')}, "
             f"{plural(len(doc.pages), 'page')} ({lang})")
    out.print(ReadableTable(
        [number("page"), number("sentences"), number("chars"), "starts with"],
        [(page.number, len(page.lines), page.chars, page.lines[0]) for page in doc.pages],
        title=title))
