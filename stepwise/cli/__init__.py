"""The ``stepwise`` command line (typer + rich).

Every user mistake and every outside failure (bad URI, missing cassette, server down)
ends as one ``error:`` line on stderr and a non-zero exit; ``--verbose`` adds the traceback.
"""

from stepwise.cli import (  # noqa: F401 -- registers the commands
    demo,
    documents,
    explore,
    generative,
    loop,
    models,
    scenarios,
    score,
    sim,
    think,
    train,
    translate,
    tree,
)
from stepwise.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
