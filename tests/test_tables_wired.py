"""Every command that prints a table keeps its numbers and headers whole at 80 columns in a
pipe (no cell or header cut to '…'), has --json where it prints a table, and words its
counts as '1 pair', '1 task failed', '2 tasks failed'."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import typer
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.common import TaskFailures
from stepwise.cli.tables import Column, ReadableTable, number

from .conftest import json_objects, short_dataset


def cli(*args: str, columns: int = 80):
    """The command as run in a pipe, ``columns`` wide."""
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(app, list(args))


def printed(renderable, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()


def assert_whole(text: str, width: int = 80) -> None:
    """Nothing cut, nothing wider than the pipe."""
    assert "…" not in text, text
    assert all(cell_len(line) <= width for line in text.splitlines()), text


def header_words(text: str) -> set[str]:
    return set(re.findall(r"[\w=()@+-]+", text))


def assert_headers(text: str, headers: list[str]) -> None:
    """Each header's words printed whole (a header may wrap at its spaces)."""
    words = header_words(text)
    for header in headers:
        assert set(header.split()) <= words, (header, text)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One short simulated document (8 lines): one page of 8 sentences, one decision."""
    return short_dataset(tmp_path_factory.mktemp("synth"))


# -- the layouts -----------------------------------------------------------------------


def test_many_short_columns_print_borderless_before_folding_into_records():
    headers = ["policy", "bleu", "d bleu", "chrf", "context tokens", "module calls", "tokens",
               "decisions by tool call", "decisions by text"]
    rows = [["auto@policy-model", "98.93", "98.98", "99.25", "157.61", "1.72", "1494.72",
             16, 0], ["none", "96.35", "96.46", "98.00", "0.00", "0.00", "931.78", None, None]]
    table = ReadableTable([Column("policy", wrap=False), *map(number, headers[1:])], rows)
    text = printed(table)
    assert_whole(text)
    assert re.search(r"^auto@policy-model\s+98\.93\s+98\.98\s+99\.25\s+157\.61\s+1\.72\s+"
                     r"1494\.72\s+16\s+0\s*$", text, re.MULTILINE), text
    assert_headers(text, headers)
    assert "│" not in text  # no room for borders: one space between columns
    assert re.search(r"^policy:\s+auto@policy-model\s*$", printed(table, 50), re.MULTILINE)


def test_a_subtotal_row_ends_its_section_and_folds_without_its_empty_cells():
    from stepwise.cli.tables import Row

    table = ReadableTable(["task", number("passed"), "status"],
                          [("cancel", "1/1", "answered"),
                           Row(("refusals: 1.000", "1/1", ""), style="bold", end_section=True),
                           ("book", "0/1", "answered")])
    text = printed(table)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "refusals: 1.000" in line)
    assert "├" in lines[at + 1] and "book" in lines[at + 2]  # a rule after the subtotal
    folded = printed(table, 26)
    assert re.search(r"^task:\s+refusals: 1\.000\s*$", folded, re.MULTILINE)
    assert folded.count("status:") == 2  # the subtotal has none


# -- the commands ----------------------------------------------------------------------


def test_think_eval_table_says_1_trial_and_keeps_its_figures_whole():
    args = ["think", "--eval", "--world", "airline", "--model", "sim:airline-oracle",
            "--tasks", "cancel-insured,book-six-passengers"]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    assert_whole(done.stdout)
    said = " ".join(done.stdout.split())
    assert "airline tasks, 1 trial each" in said and "trial(s)" not in said
    assert_headers(done.stdout, ["task", "passed", "status", "turns", "think rate",
                                 "tool errors"])
    report = json.loads(cli(*args, "--json").stdout)
    for outcome in report["outcomes"]:
        assert re.search(rf"{outcome['task']}\s.*\s1/1\s.*\s{outcome['metrics']['turns']}\s",
                         done.stdout), outcome
    assert "refusals: 1.000" in said and "must change something: 1.000" in said
    assert "over 1 task)" in said and re.search(r"\b\d+ tool calls? in \d+ turns? with tools",
                                                 said)


def test_a_runs_summary_words_its_counts():
    from stepwise.agents.think.metrics import RunMetrics

    one = RunMetrics(turns=1, think_calls=1, think_tokens=1, tool_calls=1, tool_errors=1,
                     tokens_in=1, tokens_out=1, turns_with_tools=1)
    assert one.summary() == ("1 turn, think rate 0.00 (1 think call, 1 think token), 1 tool "
                             "call (1 error), 1 token in, 1 out")
    assert RunMetrics(turns=2, tool_calls=3).summary().startswith("2 turns, think rate")
    assert "in 1 turn with tools bound" in RunMetrics(turns_with_tools=1).no_tool_calls_warning()


def test_translate_compare_table_keeps_every_score_whole_at_80_columns(dataset, tmp_path):
    args = ["translate", str(dataset), "-m", "sim:translator", "--compare",
            "none,all,auto,oracle", "--page-sentences", "4", "--out", str(tmp_path / "t")]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    table = done.stdout.split("simulated:")[0]
    assert_whole(table)
    assert_headers(table, ["policy", "bleu", "d bleu", "chrf", "context tokens",
                           "module calls", "tokens"])
    rows = json.loads(cli(*args, "--json").stdout)
    for policy, row in rows.items():
        assert re.search(rf"^{policy}\s+{row['bleu']:.2f}\s+{row['d_bleu']:.2f}\s+"
                         rf"{row['chrf']:.2f}\s", table, re.MULTILINE), (policy, table)


def test_explore_says_1_pair_and_1_parent(dataset, tmp_path):
    done = cli("explore", str(dataset), "-m", "sim:translator", "--page-sentences", "8",
               "--simulations", "8", "--out", str(tmp_path / "run"))
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text("utf-8"))
    assert summary["pairs"] == 1
    said = " ".join(done.stdout.split())
    # A long path folds mid-word at 80 columns: compare it with the whitespace taken out.
    assert f"1pairin{tmp_path / 'run' / 'pairs.jsonl'}" in "".join(said.split())
    assert "1 parent had one action" in said and "none at" not in said


def test_decisions_line_names_why_parents_gave_no_pair():
    from stepwise.cli.explore import decisions_line

    line = decisions_line({"seen": 7, "with_pair": 2, "no_pair_because": {
        "one_action": 4, "too_few_visits": 0, "all_children_equal_q": 1}})
    assert line == ("decisions: 7 seen, 2 with a pair; 4 parents had one action, 1 had every "
                    "action at the same Q")


def test_task_failures_word_the_total(capsys):
    for failed, total, line in ((1, 1, "1 of 1 task failed: t0"),
                                (2, 5, "2 of 5 tasks failed: t0, t1")):
        failures = TaskFailures()
        for index in range(failed):
            failures.add(f"t{index}", "boom")
        with pytest.raises(typer.Exit):
            failures.exit_if_any(total)
        assert line in capsys.readouterr().err


ROUNDS = [{"round": 1, "pairs": 118, "chosen_is_best": 0.875, "reward_accuracy_before": 0.5,
           "reward_accuracy_after": 0.8125, "train_fit": 0.9375, "bleu": 97.17482,
           "module_calls": 1.25, "fallbacks": 12, "oracle_agreement": 0.625,
           "failed_documents": 0}]
HELD_OUT = {"documents": "held.jsonl", "held_out": True, "simulated": True,
            "rows": {"none": {"bleu": 96.35, "d_bleu": 96.5, "oracle_agreement": 0.25,
                              "module_calls": 0.0, "fallbacks": 0, "tokens": 931.78},
                     "auto@policy-model(rank)": {"bleu": 98.125, "d_bleu": 98.25,
                                                 "oracle_agreement": 0.75,
                                                 "module_calls": 1.5, "fallbacks": 118,
                                                 "tokens": 1931.78}},
            "bleu_gap_closed": {"auto@policy-model(rank)": 0.5}}


@pytest.fixture()
def finished_loop(monkeypatch):
    """``run_loop`` as a finished loop leaves it: rounds returned, heldout.json written."""
    import stepwise.train.loop

    def run_loop(settings, out, on_stage=None, on_progress=None):
        out.mkdir(parents=True, exist_ok=True)
        (out / "heldout.json").write_text(json.dumps(HELD_OUT), "utf-8")
        return ROUNDS

    monkeypatch.setattr(stepwise.train.loop, "run_loop", run_loop)


def test_loop_tables_keep_numbers_and_headers_whole_and_json_is_one_object(
        finished_loop, dataset, tmp_path):
    args = ["loop", str(dataset), "--out", str(tmp_path / "loop"), "--rounds", "1"]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    assert_whole(done.stdout)
    assert_headers(done.stdout, ["round", "pairs", "chosen = best", "reward acc before",
                                 "train fit", "module calls", "failed docs", "policy",
                                 "d-bleu", "= oracle", "gap closed"])
    assert re.search(r"^\s*1\s+118\s+0\.88\s+0\.50\s+0\.81\s+0\.94\s+97\.17\s", done.stdout,
                     re.MULTILINE), done.stdout
    assert re.search(r"^auto@policy-model\(rank\)\s+98\.12\s+98\.25\s+0\.75\s+1\.50\s+118\s+"
                     r"1931\.78\s+0\.50\s*$", done.stdout, re.MULTILINE), done.stdout
    as_json = cli(*args, "--json")
    assert as_json.exit_code == 0, as_json.output
    (printed_json,) = json_objects(as_json.stdout)
    assert printed_json == {"rounds": ROUNDS, "heldout": HELD_OUT}


def test_train_dpo_table_says_a_figure_is_a_mean_of_batches(monkeypatch, tmp_path):
    import stepwise.train.dpo
    from stepwise.train.dpo import TrainResult

    result = TrainResult(out=str(tmp_path), model="tiny", steps=1, pairs={}, train_pairs=1,
                         eval_pairs=9, before={"reward_accuracy": 0.5, "loss": 0.6931},
                         after={"reward_accuracy": 0.875, "loss": 0.3125},
                         train_fit={"reward_accuracy": 1.0, "logps_rejected": -1234.5678},
                         settings={"batch_size": 4})
    monkeypatch.setattr(stepwise.train.dpo, "train_dpo", lambda *args, **kwargs: result)
    done = cli("train", "dpo", "--pairs", "pairs.jsonl", "-m", "tiny", "--out",
               str(tmp_path / "policy"))
    assert done.exit_code == 0, done.output
    assert_whole(done.stdout)
    said = " ".join(done.stdout.split())
    assert "DPO on 1 training pair, 9 held out (1 step, cpu)" in said
    assert_headers(done.stdout, ["figure", "held-out before (mean of 3 batches)",
                                 "held-out after", "training pairs after"])
    assert "(mean of 1 batches)" not in said  # one batch: a share of the pairs
    assert re.search(r"reward accuracy\s.*\s0\.500\s.*\s0\.875\s.*\s1\.000", done.stdout)
    assert re.search(r"logps rejected\s.*-1234\.568", done.stdout)


def test_a_round_that_does_not_improve_says_so():
    from stepwise.cli.loop import rounds_that_did_not_improve

    rows = {"none": {"bleu": 97.1, "oracle_agreement": 0.6},
            "untrained": {"bleu": 95.6, "oracle_agreement": 0.36},
            "round 1": {"bleu": 98.2, "oracle_agreement": 0.68},
            "round 2": {"bleu": 98.2, "oracle_agreement": 0.68}}
    assert rounds_that_did_not_improve({"rows": rows}) == [
        "round 2 did not improve on round 1: held-out agreement 0.68 against 0.68"]
    real = {"untrained": {"bleu": 30.0}, "round 1": {"bleu": 29.5}}
    assert rounds_that_did_not_improve({"rows": real}) == [
        "round 1 did not improve on untrained: held-out BLEU 29.50 against 30.00"]
