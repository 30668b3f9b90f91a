"""``stepwise tree``: draw a search run's tree for one task, as a PNG and/or an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stepwise.cli.common import app, cli_errors, out, state
from stepwise.errors import StepwiseError


def tree_file(run: Path, task: str) -> Path:
    """RUN/trees/TASK.json, or a one-line error that lists the tasks the run has."""
    if not run.is_dir():
        raise StepwiseError(f"no such run folder: {run}")
    trees = run / "trees"
    tasks = sorted(p.stem for p in trees.glob("*.json")) if trees.is_dir() else []
    if not tasks:
        raise StepwiseError(f"{run} holds no trees (no {trees}/*.json): is it a search run?")
    task = task.removesuffix(".json")
    if task not in tasks:
        raise StepwiseError(f"no tree for task {task!r} in {trees}; tasks: {', '.join(tasks)}")
    return trees / f"{task}.json"


@app.command()
@cli_errors
def tree(
    run: Annotated[Path, typer.Argument(help="A search run folder (holding trees/<task>.json).")],
    task: Annotated[str, typer.Argument(help="The task id whose tree to draw.")],
    png: Annotated[Path | None, typer.Option(help="Write a picture of the tree here.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write a browsable page (every node's "
                                              "prompt and completion) here.")] = None,
    max_depth: Annotated[int | None, typer.Option(min=0, help="Draw nodes down to this "
                                                  "depth only (the PNG otherwise stops at "
                                                  "the depth that keeps it readable).")] = None,
) -> None:
    """Draw one task's search tree: colour = Q, size = visits, thick = the best path.

    Per parent on the best path the chosen (max Q) and rejected (min Q) children are marked.
    The PNG labels each node with its action, Q and visits, folds a parent's unvisited
    children into one node and spells out abbreviated actions in its caption; the HTML
    page has every node.
    Example: [bold]stepwise tree runs/seed0 doc0 --png doc0.png --html doc0.html[/bold]
    """
    from stepwise.search.tree import load_tree
    from stepwise.search.view import root, write_html, write_png

    if png is None and html is None:
        raise StepwiseError("nothing to write: give --png FILE and/or --html FILE")
    path = tree_file(run, task)
    try:
        graph = load_tree(path)
        root(graph)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepwiseError(f"{path}: not a tree JSON ({type(exc).__name__}: {exc})") from exc
    for target, write in ((png, write_png), (html, write_html)):
        if target is not None:
            write(graph, target, max_depth=max_depth)
            if not state["quiet"]:
                out.print(f"wrote {target}", highlight=False)
