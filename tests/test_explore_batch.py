"""explore asks for batched generates where they help: a local model answering every
simulation in flight (workers x parallel) of its process; one generate per call otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stepwise.cli.explore
from stepwise.cli import app
from stepwise.cli.explore import rollout_batch
from stepwise.errors import StepwiseError


@pytest.mark.parametrize(("models", "workers", "parallel", "batch"), [
    (("tiny", None), 2, 2, 4), (("hf:policy", None), 1, 3, 3), (("tiny", None), 1, 1, None),
    (("sim:translator", None), 4, 4, None), (("openai:http://h/v1", None), 2, 2, None),
    (("sim:translator", "hf:policy"), 2, 1, 2)])
def test_the_batch_is_the_calls_in_flight_of_a_local_model(models, workers, parallel, batch):
    assert rollout_batch(models, workers, parallel) == batch


@pytest.fixture()
def searched(monkeypatch):
    """The EnvSpec explore builds, kept where the search would start."""
    specs = []

    def search(spec, *args, **kwargs):
        specs.append(spec)
        raise StepwiseError("stopped before the search")

    monkeypatch.setattr(stepwise.cli.explore, "_explore_here", search)
    monkeypatch.setattr(stepwise.cli.explore, "_explore_on_ray", search)
    return specs


def dataset(folder: Path) -> Path:
    """One simulated document of two sentences, which every model here takes."""
    from stepwise.sim.translation.world import make_documents, write_dataset

    row = json.loads(write_dataset(make_documents(1, 0), folder).read_text("utf-8"))
    row["src"], row["ref"] = (row[key].split("\n")[:2] for key in ("src", "ref"))
    path = folder / "dataset.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    return path


@pytest.mark.parametrize(("model", "extra", "batch"), [
    ("tiny", ["--workers", "2", "--parallel", "2"], 4),
    ("tiny", ["--workers", "3", "--parallel", "2", "--ray", "local"], 2),
    ("sim:translator", ["--workers", "2", "--parallel", "2"], None)])
def test_explore_gives_its_environments_the_batch(model, extra, batch, searched, tmp_path,
                                                  tiny_path):
    done = CliRunner().invoke(app, ["explore", str(dataset(tmp_path)), "-m", model,
                                    "--page-sentences", "1", "--out", str(tmp_path / "run"),
                                    "--threads", "1", *extra])
    assert "stopped before the search" in done.stderr, done.output
    (spec,) = searched
    assert spec.batch == batch
