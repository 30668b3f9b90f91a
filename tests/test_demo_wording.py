"""What ``stepwise demo`` says: short stage summaries, the trained model's outcome in one
sentence worked out from the figures, labels that say what a figure is, plurals that fit.

The stages' commands are replaced by stand-ins that write what the demo reads, so the
wording is checked in milliseconds (tests/test_train.py runs the real demo once)."""

from __future__ import annotations

import json

import pytest

import stepwise.cli.demo  # noqa: F401 -- registers `stepwise demo`
from stepwise.cli.common import app
from stepwise.cli.demo import outcome_sentence, search_lines, training_table


def overall(bleu: float, *, tool: int = 0, text: int = 0, fallbacks: int = 0) -> dict:
    return {"overall": {"bleu": bleu, "decisions_by_tool_call": tool, "decisions_by_text": text,
                        "fallbacks": fallbacks}}


def scores(policy: dict, none_bleu: float = 97.17482) -> dict:
    return {"none": overall(none_bleu), "auto@policy-model": policy}


@pytest.mark.parametrize(("policy", "sentence"), [
    (overall(97.17482, fallbacks=118),
     ("The trained model made no usable module decision on any of the 118 pages that "
      "needed one: every one fell back to no modules, so its BLEU is the none policy's "
      "(97.17).")),
    (overall(97.5, fallbacks=1),
     ("The trained model made no usable module decision on the one page that needed one: "
      "it fell back to no modules; BLEU 97.50, against 97.17 for none.")),
    (overall(98.0, tool=20, text=1, fallbacks=97),
     ("The trained model decided 21 of 118 pages itself (20 by a tool call, 1 by a text "
      "reply); the other 97 fell back to no modules; BLEU 98.00, against 97.17 for none.")),
    (overall(99.0, tool=118),
     ("The trained model decided all 118 pages itself (118 by a tool call); BLEU 99.00, "
      "against 97.17 for none.")),
])
def test_the_outcome_sentence_follows_the_figures(policy, sentence):
    assert outcome_sentence(scores(policy), "auto@policy-model") == sentence


def test_the_outcome_names_another_fallback_set():
    sentence = outcome_sentence(scores(overall(96.0, fallbacks=3)), "auto@policy-model",
                                fallback="entities")
    assert "every one fell back to the modules entities;" in sentence


def trained(train: int, held: int, batch: int = 4) -> dict:
    figures = {"reward_accuracy": 0.875, "loss": 1.5}
    return {"train_pairs": train, "eval_pairs": held, "steps": 1, "device": "cpu",
            "settings": {"batch_size": batch}, "before": figures if held else {},
            "after": figures if held else {}, "train_fit": figures}


def headers(table) -> list[str]:
    return [str(column.header) for column in table.columns]


def test_a_figure_averaged_over_batches_says_so():
    table = training_table(trained(6, 2))
    assert headers(table) == ["figure", "held-out before", "held-out after",
                              "training pairs after\n(mean of 2 batches)"]
    assert table.title.plain == "DPO on 6 training pairs, 2 held out (1 step, cpu)"
    single = training_table(trained(1, 0))  # one batch: the figure is a share of the pairs
    assert headers(single)[3] == "training pairs after"
    assert single.title.plain.startswith("DPO on 1 training pair, 0 held out")
    assert headers(training_table(trained(40, 9)))[1:] == [
        "held-out before\n(mean of 3 batches)", "held-out after\n(mean of 3 batches)",
        "training pairs after\n(mean of 4 batches)"]  # 16 training pairs are re-scored


SUMMARY = {"tasks": 1, "iterations": 1, "seconds": 2.4, "pairs": 1,
           "model_calls": {"calls": 2717, "saved": 6265},
           "decisions": {"seen": 2, "with_pair": 1, "no_pair_because": {"one_action": 1}},
           "optimal_rates": {"pairs_with_known_best": 8, "chosen_is_best": 1.0,
                             "rejected_is_best": 0.625}}


def test_the_search_summary_is_a_few_lines():
    assert search_lines(SUMMARY) == [
        "searched: 1 document, 1 simulation in 2 s",
        "model calls: 2,717 made, 6,265 answered from the cache",
        "decisions: 2 seen, 1 with a pair; 1 parent had one action",
        ("pairs: 1; the chosen side is one of the page's best module sets in 8 of 8, the "
         "rejected side too in 5 (equally good sets that the rollouts scored differently)")]


# ---- the whole demo, with its stages' commands replaced ---------------------------------

@pytest.fixture()
def stand_ins(monkeypatch):
    """Each stage's command writes the file the demo reads and prints what it prints."""
    import stepwise.cli.explore
    import stepwise.cli.sim
    import stepwise.cli.train
    import stepwise.cli.translate
    import stepwise.cli.tree
    from stepwise.cli.common import out

    def make(out_dir, docs, seed):
        out_dir.mkdir(parents=True)
        (out_dir / "dataset.jsonl").write_text("{}\n")

    def translate(document, out_dir, policy_model=None, **_):
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = scores(overall(97.17482, fallbacks=118) if policy_model else overall(98.0))
        (out_dir / "scores.json").write_text(json.dumps(rows))
        out.print("COMPARE TABLE")

    def explore(dataset, out_dir, **_):
        (out_dir / "trees").mkdir(parents=True)
        (out_dir / "trees" / "synth-000.json").write_text("{}")
        (out_dir / "summary.json").write_text(json.dumps(SUMMARY))
        out.print_json(json.dumps({"visit_entropy": [{"depth": 1}]}))

    def dpo(pairs, model, out_dir, **_):
        out_dir.mkdir(parents=True)
        (out_dir / "train.json").write_text(json.dumps({**trained(6, 2), "seconds": 3.0}))
        out.print("training pairs after | 0.875")

    for module, name, stand_in in ((stepwise.cli.sim, "make", make),
                                   (stepwise.cli.translate, "translate", translate),
                                   (stepwise.cli.explore, "explore", explore),
                                   (stepwise.cli.train, "dpo", dpo),
                                   (stepwise.cli.tree, "tree", lambda **_: None)):
        monkeypatch.setattr(module, name, stand_in)


def test_the_demo_speaks_to_a_newcomer(stand_ins, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        app(["demo", "--out", str(tmp_path / "demo")])
    assert done.value.code in (0, None)
    said = " ".join(capsys.readouterr().out.split())  # the console wraps at 80 columns
    assert "the seed" not in said and "visit_entropy" not in said  # no raw summary.json
    assert "the LongMT design's compare table" in said
    assert "Harbin Institute of Technology, Shenzhen" in said
    assert "searched: 1 document, 1 simulation in 2 s" in said
    assert "(mean of 2 batches)" in said and "| 0.875" not in said
    assert ("COMPARE TABLE The trained model made no usable module decision on any of the "
            "118 pages that needed one: every one fell back to no modules, so its BLEU is "
            "the none policy's (97.17).") in said
    assert "1 pairs" not in said and "1 tokens" not in said


def test_the_help_defines_the_longmt_design_and_never_says_the_seed():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["demo", "--help"])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0 and "the seed" not in said
    assert "LongMT slides and paper (Harbin Institute of Technology, Shenzhen)" in said
