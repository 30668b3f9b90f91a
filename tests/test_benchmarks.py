"""The benchmark runner works and prints what it promises (figures are not judged here)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO


def test_quick_run_prints_one_json_line_with_baseline_and_ratio():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "openai_overhead"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    row = json.loads(line)
    assert row["name"] == "openai_overhead"
    assert {"figures", "baseline", "ratio", "machine"} <= row.keys()
    assert row["ratio"]["value"] > 0 and row["baseline"]["median_us"] > 0


def test_unknown_benchmark_is_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "nope"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "nope" in done.stderr


def test_think_loop_benchmark_measures_the_agent_against_a_bare_loop():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "think_loop"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["figures"]["agent_us_per_turn_sqlite"] > 0
    assert row["baseline"]["us_per_turn"] > 0 and row["ratio"]["value"] > 0


def test_incremental_bleu_falls_back_to_the_bundled_document(tmp_path):
    """A fresh clone has no ../shared/data: the benchmark says so and uses doc0.zh."""
    import os

    env = {**os.environ, "STEPWISE_SHARED_DATA": str(tmp_path)}  # holds no documents
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "incremental_bleu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert "using the bundled doc0.zh" in done.stderr
    assert json.loads(done.stdout)["name"] == "incremental_bleu"


def test_demo_stages_holds_each_stage_to_the_cpu_share_it_lost():
    from benchmarks.demo_stages import compare

    def stages(*pairs):
        return {"stages": [{"stage": n, "title": f"stage {n}", "seconds": wall,
                            "cpu_seconds": cpu} for n, (wall, cpu) in enumerate(pairs, 1)]}

    quiet = stages((10.0, 10.0), (10.0, 10.0), (4.0, 2.0))
    competing = stages((20.0, 10.0), (12.0, 12.0), (4.0, 2.0))
    first, second, third = compare(quiet, competing)
    # half the CPU lost, twice as slow: what the competitor took, nothing more
    assert first["cpu_share_lost"] == 0.5 and first["allowed_slowdown"] == 2.0
    assert first["excess"] == 1.0
    # no CPU lost but 20 % slower: more work beside the competitor
    assert second["allowed_slowdown"] == 1.0 and second["excess"] == 1.2
    assert third["slowdown"] == 1.0 and third["excess"] == 1.0


def test_explorer_bound_deals_tasks_in_order_to_the_first_free_worker():
    from benchmarks.explorer import busiest_worker

    # 5 | 1, 1, 1 then the 4 goes to the worker with 3: 7, not the 5 a best packing gives
    assert busiest_worker([5, 1, 1, 1, 4], 2) == 7
    assert busiest_worker([3, 3, 3], 4) == 3
    assert busiest_worker([2, 2, 2, 2], 1) == 8
