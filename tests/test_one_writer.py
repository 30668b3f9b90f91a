"""One run folder takes one writer: translate and loop refuse a folder another one writes,
at once and in one line, and go on once it is free (explore and simulate: their own tests)."""

from __future__ import annotations

from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.run_lock import lock_run

from .conftest import short_dataset

runner = CliRunner()


def dataset(tmp_path):
    (tmp_path / "synth").mkdir()
    return short_dataset(tmp_path / "synth", lines=6)


def refused_line(done) -> str:
    assert done.exit_code != 0, done.output
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_translate_refuses_a_folder_another_translate_writes(tmp_path):
    data, out = dataset(tmp_path), tmp_path / "tr"
    args = ["translate", str(data), "-m", "sim:translator", "--page-sentences", "3",
            "--out", str(out)]
    with lock_run(out, "translate.lock", "translate"):  # as a running translate holds it
        line = refused_line(runner.invoke(app, args))
    assert "in use by another translate" in line and "pid" in line
    assert not list(out.rglob("*.done.json"))  # nothing was translated beside the holder
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert list(out.rglob("*.done.json"))


def test_loop_refuses_a_folder_another_loop_writes(tmp_path):
    data, out = dataset(tmp_path), tmp_path / "loop"
    with lock_run(out, "loop.lock", "loop"):
        line = refused_line(runner.invoke(app, ["loop", str(data), "--out", str(out),
                                                "--rounds", "1", "--page-sentences", "3"]))
    assert "in use by another loop" in line
    assert not (out / "loop.json").exists()
