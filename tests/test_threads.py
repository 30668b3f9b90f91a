"""Thread budgets: the arithmetic, the overrides, the machine readings and the small-product
limit that keeps a retrieval off the BLAS pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy
import pytest

from stepwise.errors import StepwiseError
from stepwise.threads import (
    THREAD_VARIABLES,
    busy_fraction_cores,
    cgroup_quota_cores,
    cpu_times,
    plan_threads,
    single_blas_thread,
    usable_cores,
)


@pytest.mark.parametrize("cores", [1, 2, 3, 8, 16, 64])
def test_callers_times_threads_never_exceed_the_cores(cores):
    for workers in range(1, 7):
        for parallel in range(1, 5):
            for busy in (0.0, 0.4, cores / 2, cores - 0.4, float(cores), cores + 3.0):
                budget = plan_threads(workers, parallel, cores=cores, busy=busy)
                callers = workers * parallel
                assert budget.callers == callers and budget.threads >= 1
                assert callers * budget.threads <= max(cores, callers), (workers, parallel, busy)
                assert not budget.oversubscribed and budget.source == "auto"


@pytest.mark.parametrize(("workers", "parallel", "cores", "busy", "threads"), [
    (1, 1, 8, 0.0, 8),  # alone on a quiet machine: every core
    (2, 2, 8, 0.0, 2),  # four callers share eight cores
    (3, 1, 8, 0.0, 2),  # what does not divide evenly is left idle, not oversubscribed
    (16, 1, 8, 0.0, 1),  # more callers than cores: one thread each
    (1, 1, 2, 0.2, 2),  # a little background noise costs no thread
    (1, 1, 2, 1.3, 1),  # another process holds a core: leave it to it
    (1, 1, 2, 2.0, 1),  # every core busy: still one thread
    (2, 1, 16, 6.0, 5),  # ten free cores for two workers
])
def test_the_budget_shares_the_free_cores(workers, parallel, cores, busy, threads):
    assert plan_threads(workers, parallel, cores=cores, busy=busy).threads == threads


def test_an_explicit_count_is_taken_as_given():
    budget = plan_threads(2, 1, 3, cores=2)
    assert (budget.threads, budget.source, budget.oversubscribed) == (3, "--threads", True)
    from_env = plan_threads(4, 2, cores=16, environ={"OMP_NUM_THREADS": "1"})
    assert (from_env.threads, from_env.source) == (1, "OMP_NUM_THREADS")
    assert plan_threads(1, 1, cores=8, environ={"OMP_NUM_THREADS": "4,2"}).threads == 4
    # --threads wins over the environment; an empty variable is no choice
    assert plan_threads(1, 1, 2, cores=8, environ={"OMP_NUM_THREADS": "6"}).threads == 2
    assert plan_threads(1, 1, cores=8, environ={"OMP_NUM_THREADS": " "}).threads == 8


@pytest.mark.parametrize(("call", "named"), [
    (lambda: plan_threads(1, 1, 0, cores=4), "--threads"),
    (lambda: plan_threads(0, 1, cores=4), "--workers"),
    (lambda: plan_threads(1, 0, cores=4), "--parallel"),
    (lambda: plan_threads(1, 1, cores=4, environ={"OMP_NUM_THREADS": "many"}),
     "OMP_NUM_THREADS"),
])
def test_bad_counts_are_one_line_errors_naming_the_input(call, named):
    with pytest.raises(StepwiseError) as caught:
        call()
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_the_environment_carries_the_budget_to_child_processes():
    one = plan_threads(4, 1, cores=2).environment()
    assert {name: one[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "1")
    assert one["TOKENIZERS_PARALLELISM"] == "false"
    four = plan_threads(1, 1, cores=4).environment()
    assert four["OMP_NUM_THREADS"] == "4" and "TOKENIZERS_PARALLELISM" not in four

    child = ("import json, os, numpy\n"
             "from threadpoolctl import threadpool_info\n"
             "print(json.dumps({'blas': [i['num_threads'] for i in threadpool_info() "
             "if i['user_api'] == 'blas'], 'omp': os.environ['OMP_NUM_THREADS']}))")
    environ = {**os.environ, **one}
    seen = json.loads(subprocess.run([sys.executable, "-c", child], env=environ,
                                     capture_output=True, text=True, check=True).stdout)
    assert seen == {"blas": [1] * len(seen["blas"]), "omp": "1"} and seen["blas"]


def test_apply_sets_the_pools_already_loaded_and_the_environment():
    """In a child process, so that this one keeps its pools."""
    child = ("import json, os, numpy\n"
             "from threadpoolctl import threadpool_info, threadpool_limits\n"
             "threadpool_limits(2, user_api='blas')\n"
             "from stepwise.threads import plan_threads\n"
             "plan_threads(1, 1, 1, cores=2).apply()\n"
             "print(json.dumps({'blas': [i['num_threads'] for i in threadpool_info() "
             "if i['user_api'] == 'blas'], 'env': os.environ['OPENBLAS_NUM_THREADS']}))")
    environ = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    seen = json.loads(subprocess.run([sys.executable, "-c", child], env=environ,
                                     capture_output=True, text=True, check=True).stdout)
    assert seen["blas"] and set(seen["blas"]) == {1} and seen["env"] == "1"


def test_a_container_quota_caps_the_cores(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota_cores(v2) == 2  # 1.5 cores: rounded up
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota_cores(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota_cores(v1) == 1 and usable_cores(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota_cores(v1) is None
    assert cgroup_quota_cores(tmp_path / "none") is None


def test_busy_cores_are_read_from_proc_stat_for_our_cpus_only():
    before = ("cpu  300 0 0 300 0 0 0 0 0 0\n"
              "cpu0 100 0 0 100 0 0 0 0 0 0\n"
              "cpu1 100 0 0 100 0 0 0 0 0 0\n"
              "cpu2 100 0 0 100 0 0 0 0 0 0\n"
              "intr 5 0 0\n")
    after = ("cpu  480 0 0 420 0 0 0 0 0 0\n"
             "cpu0 160 0 20 120 0 0 0 0 0 0\n"  # 80 of 100 busy (user + system)
             "cpu1 110 0 0 180 10 0 0 0 0 0\n"  # 10 of 100 busy; iowait counts as idle
             "cpu2 200 0 0 100 0 0 0 0 0 0\n")  # busy, but not one of ours
    ours = [0, 1]
    assert busy_fraction_cores(cpu_times(before, ours), cpu_times(after, ours), 2) == \
        pytest.approx(0.9)
    assert busy_fraction_cores((5, 10), (5, 10), 2) == 0.0  # no time passed


def _blas_threads() -> list[int]:
    """Thread counts of the BLAS libraries the limit governs from any thread (numpy's
    OpenBLAS, as found when first asked), read independently: a BLAS another test loads
    later, or one without a thread-local setter, is not among them."""
    from threadpoolctl import threadpool_info

    from stepwise.threads import blas_libraries

    governed = {library.controller.filepath for library in blas_libraries()
                if library.settable_from_any_thread}
    assert governed or not blas_libraries(), "numpy's BLAS has no thread-local setter"
    return [info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas" and info["filepath"] in governed]


def test_single_blas_thread_is_counted_across_threads_and_restored():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        outside = _blas_threads()
        entered, leave = threading.Event(), threading.Event()

        def hold() -> None:
            with single_blas_thread():
                entered.set()
                leave.wait(30)

        other = threading.Thread(target=hold)
        other.start()
        assert entered.wait(30)
        with single_blas_thread():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}  # the other thread is still inside
        leave.set()
        other.join(30)
        assert _blas_threads() == outside


def test_small_retrieval_products_run_on_one_blas_thread(monkeypatch):
    from stepwise.memory import retrieval

    seen = []

    def recording():
        import contextlib

        @contextlib.contextmanager
        def limit():
            seen.append(True)
            yield

        return limit()

    monkeypatch.setattr(retrieval, "single_blas_thread", recording)
    rng = numpy.random.default_rng(0)
    vectors = rng.standard_normal((1_000, 384), dtype=numpy.float32)
    queries = rng.standard_normal((8, 384), dtype=numpy.float32)
    expected = queries @ vectors.T
    assert numpy.allclose(retrieval.cosine(vectors, queries), expected, atol=1e-4)
    assert seen == [True]
    monkeypatch.setattr(retrieval, "SINGLE_THREAD_MAX_WORK", 1_000 * 8 * 384 - 1)
    assert numpy.allclose(retrieval.cosine(vectors, queries), expected, atol=1e-4)
    assert seen == [True]  # one multiply-add over the limit: the BLAS decides
