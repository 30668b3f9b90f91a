"""More closed sets typed as ``Literal``: ``--dtype`` on every command that has it, and the
environment spec's fields, so pydantic (or the command line) refuses another value once."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from stepwise.agents.environments import ENVIRONMENTS, EnvSpec
from stepwise.cli import app

runner = CliRunner()
DTYPE_COMMANDS = ["explore", "translate", "think", "loop"]


@pytest.mark.parametrize("command", DTYPE_COMMANDS)
def test_dtype_shows_its_choices_and_refuses_others_in_one_line(command, tmp_path):
    from stepwise.llm.hf import DTYPES

    shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    line = next(text for text in shown.stdout.splitlines()
                if text.lstrip("│ ").startswith("--dtype "))
    assert "|".join(DTYPES) in line, line

    dataset = tmp_path / "dataset.jsonl"  # never read: the option is refused first
    dataset.write_text("{}\n", encoding="utf-8")
    args = {"explore": [str(dataset)], "translate": [str(dataset)], "think": ["--checkpoints",
            str(tmp_path / "run" / "c.sqlite")]}.get(command, [])
    out = [] if command == "think" else ["--out", str(tmp_path / "run")]
    done = runner.invoke(app, [command, *args, "-m", "sim:translator", *out, "--dtype", "bf12"])
    assert done.exit_code == 2, done.output
    errors = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    quoted = ", ".join(repr(choice) for choice in DTYPES)
    assert errors == [f"error: Invalid value for '--dtype': 'bf12' is not one of {quoted}."]
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_dtype_is_read_in_any_case(tmp_path):
    from stepwise.cli.common import Dtype

    assert "bfloat16" in typing.get_args(Dtype)
    document = tmp_path / "doc.en"
    document.write_text("One line.\nAnother line.\n", encoding="utf-8")
    done = runner.invoke(app, ["translate", str(document), "--src", "en", "--tgt", "de", "-m",
                               "sim:echo", "--policy", "none", "--out", str(tmp_path / "out"),
                               "--json", "--dtype", "BFloat16"])
    assert done.exit_code == 0, done.output


def test_the_environment_spec_types_its_closed_sets_as_literals():
    from stepwise.agents.longmt.page_steps import DECIDE_MODES
    from stepwise.search.options import Rollout

    hints = typing.get_type_hints(EnvSpec)
    assert typing.get_args(hints["env"]) == ENVIRONMENTS == ("longmt", "think")
    assert typing.get_args(hints["rollout"]) == typing.get_args(Rollout)
    assert typing.get_args(hints["decide"]) == DECIDE_MODES


@pytest.mark.parametrize("field", ["env", "rollout", "decide"])
def test_the_environment_spec_refuses_a_value_outside_its_set_when_built(field):
    good = {"env": "think", "dataset": "airline", "model": "sim:airline-oracle"}
    with pytest.raises(ValidationError, match=field):
        EnvSpec(**{**good, field: "bogus"})
