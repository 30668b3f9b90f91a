"""A folder that `stepwise sim make --out DIR` wrote is its dataset: translate and explore
take DIR itself, and need no --src/--tgt for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.documents.sources import load_documents
from stepwise.errors import StepwiseError

runner = CliRunner()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """What `stepwise sim make --docs 1` writes, its one document cut to 8 lines (fast)."""
    folder = tmp_path_factory.mktemp("synth")
    done = runner.invoke(app, ["sim", "make", "--docs", "1", "--out", str(folder)])
    assert done.exit_code == 0, done.output
    row = json.loads((folder / "dataset.jsonl").read_text("utf-8"))
    row["src"], row["ref"] = (row[key].split("\n")[:8] for key in ("src", "ref"))
    (folder / "dataset.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    return folder


def test_translate_reads_a_sim_make_folder_without_languages(made, tmp_path):
    done = runner.invoke(app, ["translate", str(made), "-m", "sim:translator",
                               "--out", str(tmp_path / "out"), "--json"])
    assert done.exit_code == 0, done.stderr
    row = json.loads(made.joinpath("dataset.jsonl").read_text("utf-8"))
    assert (tmp_path / "out" / "none" / f"{row['id']}.{row['tgt_lang']}").is_file()


def test_explore_reads_a_sim_make_folder_without_languages(made, tmp_path):
    done = runner.invoke(app, ["explore", str(made), "-m", "sim:translator",
                               "--page-sentences", "4", "--simulations", "4",
                               "--out", str(tmp_path / "run")])
    assert done.exit_code == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text("utf-8"))
    assert summary["finished"] == 1


def test_a_folder_is_its_dataset_unless_its_documents_are_asked_for(made, tmp_path):
    row = json.loads(made.joinpath("dataset.jsonl").read_text("utf-8"))
    assert [(d.id, d.src_lang) for d in load_documents(made)] == [(row["id"], row["src_lang"])]
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "dataset.jsonl").write_text((made / "dataset.jsonl").read_text("utf-8"), "utf-8")
    (folder / "mine.en").write_text("One line.\nAnother line.\n", "utf-8")
    assert [d.id for d in load_documents(folder, src="en", tgt="de")] == ["mine"]
    assert [d.id for d in load_documents(folder)] == [row["id"]]


def test_the_loader_says_what_it_looked_for_in_a_folder(tmp_path):
    with pytest.raises(StepwiseError, match=r"no dataset\.jsonl in this folder.*--src and "
                                            r"--tgt"):
        load_documents(tmp_path)
    with pytest.raises(StepwiseError, match=r"no \*\.en files and no dataset\.jsonl"):
        load_documents(tmp_path, src="en", tgt="de")
