"""``--threads`` and the thread budget on the command line: a command that runs models or
torch holds its process, and the processes it starts, to the budget before anything loads;
--verbose says what it decided and why, and a count that oversubscribes the cores warns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import stepwise.threads
from stepwise.cli import app
from stepwise.threads import THREAD_VARIABLES, plan_threads

MODEL_COMMANDS = ["explore", "loop", "translate", "think", "simulate", "interview", "memory",
                  "train dpo", "demo", "ask", "record"]

from .conftest import short_dataset


@pytest.fixture(autouse=True)
def restored_threads(monkeypatch):
    """Each test's budget stays in the test: the environment is restored by monkeypatch,
    torch's and BLAS's pools here."""
    for name in (*THREAD_VARIABLES, "TOKENIZERS_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    blas = [(library, library.threads) for library in stepwise.threads.blas_libraries()]
    yield
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    for library, count in blas:
        library.set_threads(count)


@pytest.fixture()
def cores(monkeypatch):
    """A machine of ``n`` usable cores, none kept busy by other work."""
    def machine(n: int) -> None:
        monkeypatch.setattr(stepwise.threads, "usable_cores", lambda *args: n)
        monkeypatch.setattr(stepwise.threads, "busy_cores", lambda *args: 0.0)

    return machine


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One short simulated document: a search of it takes well under a second."""
    return short_dataset(tmp_path_factory.mktemp("synth"))


def explore(dataset: Path, out: Path, *extra: str, verbose: bool = False):
    args = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "8",
            "--simulations", "4", "--workers", "2", "--parallel", "2", "--out", str(out),
            *extra]
    return CliRunner().invoke(app, ["--verbose", *args] if verbose else args)


def environment() -> dict[str, str]:
    import os

    return {name: os.environ[name] for name in (*THREAD_VARIABLES, "TOKENIZERS_PARALLELISM")
            if name in os.environ}


def test_explore_threads_is_what_its_children_get(dataset, tmp_path, cores):
    cores(16)
    done = explore(dataset, tmp_path / "run", "--threads", "3", verbose=True)
    assert done.exit_code == 0, done.output
    assert environment() == plan_threads(2, 2, 3, cores=16).environment()
    show = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['RAYON_NUM_THREADS'])"
    child = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True,
                           check=True)
    assert child.stdout.split() == ["3", "3"]
    assert "threads: 3 per caller (--threads)" in done.stderr
    assert "warning" not in done.stderr  # 4 callers x 3 threads fit in 16 cores


def test_explore_without_threads_shares_the_cores_between_workers_and_parallel(
        dataset, tmp_path, cores):
    cores(8)
    done = explore(dataset, tmp_path / "run", verbose=True)
    assert done.exit_code == 0, done.output
    budget = plan_threads(2, 2, cores=8)
    assert budget.threads == 2 and environment() == budget.environment()
    assert budget.describe() in done.stderr


def test_quiet_about_the_budget_without_verbose(dataset, tmp_path, cores):
    cores(8)
    done = explore(dataset, tmp_path / "run")
    assert done.exit_code == 0, done.output
    assert "threads:" not in done.stderr and environment()["OMP_NUM_THREADS"] == "2"


def test_an_oversubscribing_count_warns(dataset, tmp_path, cores):
    cores(2)
    done = explore(dataset, tmp_path / "run", "--threads", "4")
    assert done.exit_code == 0, done.output
    warning = " ".join(done.stderr.split())
    assert ("warning: --threads 4 for each of 4 callers (workers x parallel) asks for 16 "
            "threads on 2 cores") in warning
    assert environment()["OMP_NUM_THREADS"] == "4"  # as given


def test_one_thread_turns_the_tokenizers_pool_off(cores):
    cores(4)
    done = CliRunner().invoke(app, ["ask", "hello", "--model", "sim:echo", "--threads", "1"])
    assert done.exit_code == 0, done.output
    assert environment() == {**{name: "1" for name in THREAD_VARIABLES},
                             "TOKENIZERS_PARALLELISM": "false"}


def test_think_holds_to_the_budget_before_its_run(cores, tmp_path):
    cores(4)
    done = CliRunner().invoke(app, ["think", "--world", "airline", "--task", "cancel-insured",
                                    "--model", "sim:airline-oracle", "--threads", "2",
                                    "--checkpoints", str(tmp_path / "runs.sqlite")])
    assert environment()["OMP_NUM_THREADS"] == "2", done.output


def test_threads_below_one_is_one_line_naming_it():
    done = CliRunner().invoke(app, ["train", "dpo", "--pairs", "p.jsonl", "-m", "tiny",
                                    "--out", "o", "--threads", "0"])
    assert done.exit_code == 2
    assert "error: Invalid value for '--threads': must be at least 1, got 0" in done.stderr


def test_every_command_that_runs_models_takes_threads():
    group = typer.main.get_command(app)
    for name in MODEL_COMMANDS:
        command = group
        for part in name.split():
            command = command.commands[part]
        assert "--threads" in {opt for param in command.params for opt in param.opts}, name
