"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import re

from .conftest import REPO


def fenced_bash(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = fenced_bash((REPO / "README.md").read_text())
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == readme[1]
    assert readme[1].endswith("python -m pytest")


def test_torch_is_pinned_before_anything_that_needs_it():
    for command in fenced_bash((REPO / "README.md").read_text())[:2]:
        assert command.index("torch==2.13.0") < command.index('-e ".[hf,dev]"')
