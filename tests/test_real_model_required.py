"""CI's real-model run must test the model, not skip past its absence."""

import os
import subprocess
import sys

from .conftest import REPO

ONE_TEST = "tests/test_real_model.py::test_the_readme_example_runs_as_written"


def _run(tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("STEPWISE_REQUIRE_REAL_MODEL", "PYTEST_XDIST_WORKER")}
    environ.update(STEPWISE_TEST_USER_CACHE=str(tmp_path / "no-cache"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", ONE_TEST, "-m", "real_model",
                           "-n", "0", "-q", "-rE", "-p", "no:cacheprovider"],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_missing_real_model_skips_by_default(tmp_path):
    run = _run(tmp_path)
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout


def test_a_missing_real_model_fails_where_it_is_required(tmp_path):
    run = _run(tmp_path, STEPWISE_REQUIRE_REAL_MODEL="1")
    assert run.returncode == 1, run.stdout
    assert "1 error" in run.stdout  # the fixture fails: an error of the test it serves
    assert "the real model is not in" in run.stdout
