"""DPO training on explorer pairs, the trained model back as the LongMT policy, the loop
and the demo. Everything runs on the tiny random model and the simulated world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.errors import StepwiseError
from stepwise.train.dpo import DPOSettings, split_pairs, train_dpo
from stepwise.train.pair_checks import PREFIX_REASON, PairsError, check_pairs

from .conftest import short_dataset

runner = CliRunner()


def run_cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def world_pairs(tmp_path_factory) -> Path:
    """Best-path pairs of 6 simulated documents, 3-sentence pages (12 pairs)."""
    root = tmp_path_factory.mktemp("pairs")
    made = run_cli("sim", "make", "--world", "translation", "--docs", 6, "--out", root / "synth")
    assert made.exit_code == 0, made.output
    explored = run_cli("explore", root / "synth" / "dataset.jsonl", "-m", "sim:translator",
                       "--page-sentences", 3, "--simulations", 24, "--out", root / "run")
    assert explored.exit_code == 0, explored.output
    return root / "run" / "pairs.jsonl"


@pytest.fixture(scope="module")
def trained(world_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "policy"
    steps = []
    result = train_dpo(world_pairs, "tiny", out, DPOSettings(max_steps=30, eval_frac=0.0),
                       on_step=lambda step, total: steps.append((step, total)))
    return out, result, steps


@pytest.mark.slow
def test_tiny_model_fits_the_worlds_pairs_within_a_few_dozen_steps(trained):
    out, result, steps = trained
    assert result.train_pairs == 12 and result.steps == 30
    assert steps[-1] == (30, 30)
    # At the start policy = reference, so every implicit reward is 0 and no pair is won.
    assert result.train_fit["reward_accuracy"] >= 0.9
    assert result.train_fit["reward_margin"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    for key in ("loss", "reward_accuracy", "reward_margin", "logps_chosen", "logps_rejected"):
        assert all(key in r for r in rows), key
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "train.json").read_text())
    assert saved["settings"]["sft_weight"] == 0.2 and saved["pairs"]["kept"] == 12


@pytest.mark.slow
def test_the_trained_model_loads_as_hf_dir_and_decides_the_modules(trained, world_pairs,
                                                                   tmp_path):
    out, _, _ = trained
    dataset = world_pairs.parent.parent / "synth" / "dataset.jsonl"
    one_doc = tmp_path / "one.jsonl"
    one_doc.write_text(dataset.read_text().splitlines()[0] + "\n")
    result = run_cli("translate", one_doc, "-m", "sim:translator", "--compare", "none,auto",
                     "--policy-model", f"hf:{out}", "--page-sentences", 3, "--out",
                     tmp_path / "tx", "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "tx" / "scores.json").read_text())
    assert set(scores) == {"none", "auto", "auto@policy-model"}
    steps = [json.loads(line) for line in
             (tmp_path / "tx" / "auto@policy-model" / "synth-000.trace.jsonl").open()]
    decided = [s["decided_by"] for s in steps]
    assert decided[0] == "first page" and set(decided[1:]) <= {"model", "fallback"}
    assert scores["auto@policy-model"]["overall"]["fallbacks"] == decided.count("fallback")
    assert scores["auto"]["overall"]["fallbacks"] == 0


def test_bad_pairs_files_are_refused_with_the_reasons(tmp_path, world_pairs, tiny_path):
    good = world_pairs.read_text().splitlines()
    not_jsonl = tmp_path / "pairs.txt"
    not_jsonl.write_text("prompt,chosen,rejected\na,b,c\n")
    mixed = tmp_path / "mixed.jsonl"
    row = json.loads(good[0])
    mixed.write_text("\n".join([
        good[0],
        json.dumps({"prompt": row["prompt"], "chosen": row["chosen"]}),
        json.dumps({**row, "rejected": []}),
        json.dumps({**row, "chosen": [{"role": "user", "content": "hi"}]}),
        '{"prompt": [',
    ]) + "\n")
    no_tokenizer = tmp_path / "model"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text("{}")
    for args, message in (
        ((not_jsonl, "tiny"), "not JSONL"),
        ((tmp_path / "missing.jsonl", "tiny"), "no such pairs file"),
        ((mixed, "tiny"), "4 of 5 pairs cannot be trained on"),
        ((world_pairs, f"hf:{no_tokenizer}"), "no tokenizer there"),
    ):
        result = run_cli("train", "dpo", "--pairs", args[0], "-m", args[1], "--out",
                         tmp_path / "out")
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    result = run_cli("train", "dpo", "--pairs", mixed, "-m", "tiny", "--out", tmp_path / "out")
    for reason in ("missing field 'rejected' (line 2)", "empty rejected (line 3)",
                   "chosen does not start with an assistant turn (line 4)", "not JSON (line 5)"):
        assert reason in " ".join(result.output.split()), reason


def test_pair_checks_name_every_reason_and_flag_conflicting_prompts(world_pairs, tiny_path):
    from transformers import AutoTokenizer

    rows = [json.loads(line) for line in world_pairs.read_text().splitlines()]
    swapped = {**rows[0], "chosen": rows[0]["rejected"], "rejected": rows[0]["chosen"]}
    same = {**rows[1], "rejected": rows[1]["chosen"]}
    # A prompt the template renders differently once a step follows: not a prefix.
    unprefixed = {**rows[2], "prompt": [*rows[2]["prompt"],
                                        {"role": "assistant", "content": "x"},
                                        {"role": "user", "content": "and?"}]}
    path = world_pairs.parent / "checked.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:3], swapped, same]))
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    kept, report = check_pairs(path, tokenizer)
    assert report.rows == 5 and report.kept == len(kept) == 4
    assert report.dropped == {"chosen and rejected are the same step": 1}
    assert report.examples["chosen and rejected are the same step"] == [5]
    assert report.conflicting_prompts == 1  # rows[0] and its swapped copy
    with pytest.raises(PairsError, match="no such pairs file"):
        check_pairs(path.with_name("absent.jsonl"))

    class Reordering:  # a template whose history rendering changes after the prompt
        chat_template = "x"

        def apply_chat_template(self, messages, tools=None, add_generation_prompt=False,
                                tokenize=True):
            ids = [len(m.get("content") or "") for m in messages]
            return ids if add_generation_prompt else [0, *ids]

    path.write_text(json.dumps(unprefixed) + "\n")
    kept, report = check_pairs(path, Reordering())
    assert kept == [] and report.dropped == {PREFIX_REASON: 1}


def test_held_out_split_is_seeded_and_never_empty_on_either_side():
    rows = [{"i": i} for i in range(10)]
    train, held = split_pairs(rows, 0.2, seed=3)
    assert len(held) == 2 and len(train) == 8
    assert split_pairs(rows, 0.2, seed=3) == (train, held)
    assert split_pairs(rows, 0.2, seed=4) != (train, held)
    assert split_pairs(rows[:2], 0.01, seed=0)[1] != []  # a share means at least one pair
    assert split_pairs(rows[:1], 0.5, seed=0) == (rows[:1], [])
    assert split_pairs(rows, 0.0, seed=0) == (rows, [])


@pytest.mark.slow
def test_loop_runs_rounds_with_the_trained_policy_and_resumes(tmp_path):
    from stepwise.train.loop import LoopSettings, run_loop

    dataset = short_dataset(tmp_path / "world", lines=12)
    settings = LoopSettings(dataset=str(dataset), rounds=2, simulations=6, page_sentences=4,
                            dpo=DPOSettings(max_steps=2, eval_frac=0.3))
    stages = []
    rows = run_loop(settings, tmp_path / "loop", on_stage=lambda r, s: stages.append((r, s)))
    assert [r["round"] for r in rows] == [1, 2]
    assert [r["rollout"] for r in rows] == ["random", "auto"]  # round 2: the trained policy
    assert stages == [(0, "baselines"), (1, "explore"), (1, "train"), (1, "evaluate"),
                      (2, "explore"), (2, "train"), (2, "evaluate")]
    assert all(r["pairs"] >= 1 and r["fallbacks"] is not None for r in rows)
    config = json.loads((tmp_path / "loop" / "round-2" / "model" / "config.json").read_text())
    assert config.get("use_cache", True) is True  # saved for generation, not for training
    marker = tmp_path / "loop" / "round-2" / "train.done.json"
    written = marker.stat().st_mtime_ns
    assert run_loop(settings, tmp_path / "loop") == rows  # everything kept, nothing redone
    assert marker.stat().st_mtime_ns == written
    with pytest.raises(Exception, match="other settings"):
        run_loop(settings.model_copy(update={"rounds": 3}), tmp_path / "loop")


def test_loop_measures_every_row_on_held_out_documents(tmp_path):
    from stepwise.train.loop import LoopSettings, run_loop

    dataset = short_dataset(tmp_path / "explored", lines=12)
    held_out = short_dataset(tmp_path / "held-out", lines=12, seed=1)
    settings = LoopSettings(dataset=str(dataset), heldout=str(held_out), rounds=1,
                            per_step=8, reward="page", negatives="closest",
                            page_sentences=4, decide="reward",
                            dpo=DPOSettings(max_steps=2, eval_frac=0.3))
    run_loop(settings, tmp_path / "loop")
    table = json.loads((tmp_path / "loop" / "heldout.json").read_text())
    rows = table["rows"]
    assert list(rows) == ["none", "all", "only:entities", "auto", "markers", "oracle",
                          "untrained", "round 1"]
    assert table["held_out"] and table["simulated"]
    assert rows["oracle"]["oracle_agreement"] == 1.0  # the oracle agrees with itself
    assert rows["none"]["module_calls"] == 0 and rows["all"]["module_calls"] > 0
    pages = rows["none"]["pages"]
    assert all(row["pages"] == pages for row in rows.values())  # the same documents
    assert 0 <= rows["round 1"]["oracle_agreement"] <= 1
    # the trained round ranks by its implicit reward; untrained, that would be 0 everywhere
    assert rows["round 1"]["decide"] == "reward" and rows["untrained"]["decide"] == "rank"
    assert set(table["bleu_gap_closed"]) == {"untrained", "round 1"}

    with pytest.raises(StepwiseError, match="never explored"):
        run_loop(settings.model_copy(update={"heldout": str(dataset)}), tmp_path / "loop2")


def test_demo_refuses_an_unknown_model_in_one_line(tmp_path):
    result = run_cli("demo", "--out", tmp_path / "demo", "--model", "gpt-9")
    assert result.exit_code != 0
    assert "Invalid value for '--model': 'gpt-9' is not one of 'tiny', 'smollm2'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "demo").exists()


def test_demo_runs_the_whole_loop_offline(tmp_path):
    result = run_cli("demo", "--out", tmp_path / "demo", "--docs", 1, "--simulations", 6,
                     "--max-steps", 2)
    assert result.exit_code == 0, result.output
    for name in ("tree.png", "policy/curves.png", "policy/config.json",
                 "explore/pairs.jsonl", "translations/scores.json"):
        assert (tmp_path / "demo" / name).is_file(), name
    scores = json.loads((tmp_path / "demo" / "translations" / "scores.json").read_text())
    assert set(scores) == {"none", "all", "auto", "oracle", "auto@policy-model"}
    assert "simulated" in result.output
    stages = json.loads((tmp_path / "demo" / "stages.json").read_text())
    assert [s["stage"] for s in stages["stages"]] == [1, 2, 3, 4, 5]
    assert all(s["seconds"] > 0 and s["cpu_seconds"] >= 0 for s in stages["stages"])
    assert stages["total"]["seconds"] == pytest.approx(sum(s["seconds"]
                                                           for s in stages["stages"]))
    assert "time per stage" in result.output


@pytest.mark.parametrize("command", [("train", "dpo"), ("loop",)])
def test_the_commands_take_their_training_defaults_and_help_from_the_settings(command):
    """One model, one set of defaults: each option that sets a DPOSettings field has that
    field's default and description, so ``train dpo`` and ``loop`` cannot drift apart."""
    import typer.main

    cli = typer.main.get_command(app)
    for name in command:
        cli = cli.commands[name]
    fields = {"lr": "learning_rate"}
    loops_own = {"seed", "device"} if command == ("loop",) else set()  # search's too
    shared = [p for p in cli.params if fields.get(p.name, p.name) in DPOSettings.model_fields
              and p.name not in loops_own]
    assert {p.name for p in shared} >= {"beta", "sft_weight", "lora", "max_steps",
                                        "eval_frac", "lr"}
    for param in shared:
        field = DPOSettings.model_fields[fields.get(param.name, param.name)]
        assert (param.name, param.default) == (param.name, field.default)
        assert param.help == field.description


def test_a_policy_ranking_in_rollouts_scores_each_page_once(tmp_path):
    """Round r > 1 rolls out with the last policy deciding: ranked, each page's decision is
    the same question whichever rollout asks it, so the model scores it once."""
    from stepwise.documents.pages import paginate
    from stepwise.train.loop import LoopSettings, explore_round

    dataset = short_dataset(tmp_path / "world", lines=12)
    settings = LoopSettings(dataset=str(dataset), per_step=8, reward="page", page_sentences=4,
                            decide="rank")
    row = explore_round(settings, tmp_path / "explore", "tiny", 2)
    assert row["rollout"] == "auto" and row["pairs"] >= 1
    pages = len(paginate(json.loads(dataset.read_text())["src"], "qsy", page_sentences=4).pages)
    scorings = row["policy_scorings"]
    assert 1 <= scorings["scored"] <= pages - 1  # the first page has nothing to decide
    assert scorings["saved"] > scorings["scored"]


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_top_layers_trains_only_them_and_a_second_pass_reuses_the_reference(
        world_pairs, tmp_path, tiny_path):
    out = tmp_path / "top"
    # 12 pairs, 4 steps of 4: more than one pass, so the reference's log-probs are computed once.
    result = train_dpo(world_pairs, "tiny", out, DPOSettings(max_steps=4, eval_frac=0.0,
                                                              top_layers=1))
    assert result.precomputed_reference and result.settings["top_layers"] == 1
    assert result.prepare_seconds > 0
    before, after = _weights(tiny_path), _weights(out)
    changed = {name for name in after if not (after[name] == before[name]).all()}
    top = max(int(name.split(".")[2]) for name in after if ".layers." in name)
    assert changed and all(f"layers.{top}." in name or name == "model.norm.weight"
                           for name in changed), sorted(changed)
    once = train_dpo(world_pairs, "tiny", tmp_path / "once", DPOSettings(max_steps=1,
                                                                         eval_frac=0.0))
    assert not once.precomputed_reference  # one step of 4 of the 12 pairs: never re-read


def test_top_layers_beyond_the_model_is_refused(world_pairs, tmp_path, tiny_path):
    with pytest.raises(StepwiseError, match="top_layers=99, but the model has"):
        train_dpo(world_pairs, "tiny", tmp_path / "x", DPOSettings(max_steps=1, top_layers=99))


@pytest.mark.slow
def test_a_real_model_on_the_cpu_runs_its_frozen_layers_once_per_pair(world_pairs, tmp_path,
                                                                       tiny_path):
    # As hf:PATH (not tiny) a CPU takes one pair at a time: the same batch on every pass.
    out = tmp_path / "trunk"
    result = train_dpo(world_pairs, f"hf:{tiny_path}", out,
                       DPOSettings(max_steps=6, eval_frac=0.0, top_layers=1, learning_rate=1e-3))
    # Training, then the reference precomputed for the training and fit pairs, the fit after.
    passes = 6 * 4 + 12 + 12 + 12
    assert result.frozen_trunk == {"hits": passes - 12, "misses": 12}
    before, after = _weights(tiny_path), _weights(out)
    assert sorted(after) == sorted(before)  # the layers' own names, not the trunk's
    changed = {name for name in after if not (after[name] == before[name]).all()}
    assert changed and not any(".layers.0." in name for name in changed)
