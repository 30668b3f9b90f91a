"""Resuming a run folder: one check, one message naming the first setting that differs."""

from __future__ import annotations

import json

import pytest

from stepwise.errors import StepwiseError
from stepwise.run_settings import check_saved_settings, first_difference
from stepwise.train.dpo import DPOSettings
from stepwise.train.loop import LoopSettings, run_loop


def test_the_first_differing_key_is_named_with_both_values(tmp_path):
    saved = {"seed": 1, "dpo": {"beta": 0.1, "max_steps": 30}, "rounds": 2}
    asked = {"seed": 2, "dpo": {"beta": 0.1, "max_steps": 40}, "rounds": 3}
    assert first_difference(saved, asked) == ("dpo.max_steps", 30, 40)  # sorted: dpo first
    assert first_difference(saved, json.loads(json.dumps(saved))) is None
    (tmp_path / "run.json").write_text(json.dumps(saved))
    with pytest.raises(StepwiseError) as refused:
        check_saved_settings(tmp_path / "run.json", {**saved, "extra": [1]}, "run")
    assert str(refused.value) == (f"{tmp_path} holds a run with other settings (extra: saved "
                                  "nothing, asked [1]); use another --out or the same options")
    check_saved_settings(tmp_path / "run.json", dict(saved), "run")  # the same: resumes
    check_saved_settings(tmp_path / "none.json", asked, "run")  # nothing saved yet
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(StepwiseError, match="run.json: not a run's settings"):
        check_saved_settings(tmp_path / "run.json", saved, "run")


def test_a_loop_resumed_with_other_options_names_the_option(tmp_path):
    """Refused before any input is read: the dataset need not exist."""
    first = LoopSettings(dataset="missing.jsonl", dpo=DPOSettings(max_steps=30))
    (tmp_path / "loop.json").write_text(json.dumps(first.model_dump()))
    again = first.model_copy(update={"dpo": DPOSettings(max_steps=40)})
    with pytest.raises(StepwiseError, match=r"holds a loop with other settings "
                       r"\(dpo\.max_steps: saved 30, asked 40\); use another --out"):
        run_loop(again, tmp_path)


def test_an_explore_resumed_with_other_options_names_the_option(tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.sim.translation.world import make_documents, write_dataset

    data = write_dataset(make_documents(1, 0), tmp_path / "synth")
    args = ["explore", str(data), "-m", "sim:translator", "--page-sentences", "4",
            "--out", str(tmp_path / "run")]
    first = CliRunner().invoke(app, [*args, "--simulations", "2"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--simulations", "3", "--resume"])
    assert again.exit_code == 2
    assert "holds a run with other settings (options.simulations: saved 2, asked 3)" in again.stderr
