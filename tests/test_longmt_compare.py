"""The seed's structure on the synthetic world (a simulation), through ``stepwise translate``.

Calling every module blindly is not the best fixed policy, because irrelevant context
interferes; an oracle that calls exactly what each page needs beats every fixed policy.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.sim.translation.world import make_documents, write_dataset

FIXED = ("none", "all", "only:summaries", "only:pages", "only:entities")


@pytest.mark.parametrize("seed", [0, 3])
def test_oracle_beats_every_fixed_policy_and_all_is_not_the_best(tmp_path, seed):
    dataset = write_dataset(make_documents(4, seed), tmp_path / "world")
    result = CliRunner().invoke(app, [
        "translate", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
        "--compare", ",".join([*FIXED, "auto", "oracle"]), "--out", str(tmp_path / "runs"),
        "--json"])
    assert result.exit_code == 0, result.stderr
    table = json.loads(result.stdout)
    assert all(row["simulated"] for row in table.values())
    assert {"bleu", "d_bleu", "chrf", "context_tokens"} <= set(table["oracle"])
    fixed = {policy: table[policy]["d_bleu"] for policy in FIXED}
    best_fixed = max(fixed.values())
    assert table["oracle"]["d_bleu"] > best_fixed
    assert fixed["all"] < best_fixed
    assert table["oracle"]["context_tokens"] < table["all"]["context_tokens"]
    assert table["none"]["module_calls"] == 0
