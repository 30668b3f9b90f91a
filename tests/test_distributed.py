"""Exploring over Ray gives the same run folder, byte for byte, as the thread pool."""

from __future__ import annotations

import json
import sys

import pytest

ray = pytest.importorskip("ray")

from stepwise.agents.environments import EnvSpec
from stepwise.errors import StepwiseError
from stepwise.search.distributed import MISSING_RAY, explore_tasks_ray, portable_spec
from stepwise.search.options import ExploreOptions
from stepwise.search.run import explore_tasks

OPTIONS = ExploreOptions(simulations=12)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray on 2 CPUs for the module; explore_tasks_ray uses it and leaves it open."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from stepwise.sim.translation import make_documents, write_dataset

    path = write_dataset(make_documents(2, 0), tmp_path_factory.mktemp("world"))
    return EnvSpec(env="longmt", dataset=str(path), model="sim:translator", page_sentences=5)


@pytest.fixture(scope="module")
def threaded(spec, tmp_path_factory):
    """The reference: the same run through explore_tasks' thread pool."""
    out = tmp_path_factory.mktemp("threaded")
    make_env, cached = spec.factory()
    report = explore_tasks(spec.task_ids(), make_env, OPTIONS, out, env_name="longmt",
                           workers=2, model_counts=lambda: cached.counts, simulated=True)
    return out, report


def same_files(a, b) -> None:
    assert (a / "pairs.jsonl").read_bytes() == (b / "pairs.jsonl").read_bytes()
    trees = sorted(p.name for p in (a / "trees").iterdir())
    assert trees == sorted(p.name for p in (b / "trees").iterdir()) and len(trees) == 2
    for name in trees:
        assert (a / "trees" / name).read_bytes() == (b / "trees" / name).read_bytes()


@pytest.mark.timeout(120)
def test_ray_run_equals_thread_pool_then_skips_and_resumes(local_ray, spec, threaded, tmp_path):
    reference, expected = threaded
    out = tmp_path / "ray"
    done: list[str] = []
    report = explore_tasks_ray(spec, spec.task_ids(), OPTIONS, out, address="local",
                               env_name="longmt", on_task_done=done.append, simulated=True)
    same_files(out, reference)
    assert sorted(done) == sorted(spec.task_ids())
    assert (report.tasks, report.finished, report.iterations) == (2, 2, 24)
    assert report.pairs == expected.pairs >= 1 and report.pair_stats == expected.pair_stats
    assert report.optimal_rates == expected.optimal_rates
    assert report.model_calls["calls"] >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == report.pairs and summary["iterations"] == 24
    assert json.loads(next(iter((out / "trees").iterdir())).read_text())["graph"]["simulated"]

    # A second call searches nothing: every tree is there.
    done.clear()
    again = explore_tasks_ray(spec, spec.task_ids(), OPTIONS, out, address="local",
                              env_name="longmt", on_task_done=done.append, simulated=True)
    assert (again.iterations, again.model_calls, again.pairs) == (0, {}, report.pairs)
    assert done == spec.task_ids()
    same_files(out, reference)

    # A task whose tree is gone is rebuilt from its event log, to the same bytes.
    first = spec.task_ids()[0]
    (out / "trees" / f"{first}.json").unlink()
    (out / "pairs.jsonl").unlink()
    resumed = explore_tasks_ray(spec, spec.task_ids(), OPTIONS, out, address="local",
                                env_name="longmt", simulated=True)
    assert resumed.iterations == 12  # replayed from events/, then the tree written again
    same_files(out, reference)


@pytest.mark.timeout(120)
def test_a_worker_error_names_the_task(local_ray, spec, tmp_path):
    bad = spec.model_copy(update={"model": "sim:no-such-world"})
    with pytest.raises(StepwiseError, match=r"synth-00\d: .*no-such-world"):
        explore_tasks_ray(bad, spec.task_ids(), OPTIONS, tmp_path / "bad", address="local",
                          env_name="longmt", simulated=True)


def test_without_ray_a_clear_error(monkeypatch, spec, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(StepwiseError) as caught:
        explore_tasks_ray(spec, spec.task_ids(), OPTIONS, tmp_path, address="local",
                          env_name="longmt")
    assert str(caught.value) == MISSING_RAY
    assert "pip install 'stepwise[distributed]'" in MISSING_RAY


def test_portable_spec_makes_local_paths_absolute(spec, tmp_path, monkeypatch):
    from pathlib import Path

    dataset = Path(spec.dataset)
    monkeypatch.chdir(dataset.parent)
    (tmp_path / "tape.yaml").write_text("")
    relative = spec.model_copy(update={"dataset": dataset.name,
                                       "model": f"replay:{tmp_path / 'tape.yaml'}"})
    moved = portable_spec(relative)
    assert moved.dataset == str(dataset.resolve()) and moved.model == relative.model
    monkeypatch.chdir(tmp_path)
    assert portable_spec(relative.model_copy(update={"model": "replay:tape.yaml"})).model == (
        f"replay:{tmp_path.resolve() / 'tape.yaml'}")
    assert portable_spec(spec) == spec  # already absolute, sim model: unchanged


def test_explore_cli_runs_on_local_ray(local_ray, tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    base = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
            "--simulations", "8"]
    here = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "here")])
    there = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "ray"), "--ray", "auto"])
    assert here.exit_code == 0 and there.exit_code == 0, there.stderr
    assert (tmp_path / "here" / "pairs.jsonl").read_bytes() == \
        (tmp_path / "ray" / "pairs.jsonl").read_bytes()
