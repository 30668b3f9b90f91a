"""Tables stay readable when narrow: text wraps, then rows fold into ``key: value`` lines;
numbers and headers are never cut, and every command that prints a table has ``--json``."""

from __future__ import annotations

import io
import json
import re
import shutil

from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.cli.tables import Column, ReadableTable, number

from .conftest import REPO, json_objects

MEMORY = ("Maria Lopez is planning a Valentine's Day party at Hobbs Cafe on February 14th "
          "from 5pm and is eager to invite everyone she meets")
WIDE_CJK = "萨萨林喷出一股火焰，这个高大的斯拉克人将一小片森林点燃，然后在这上空盘旋，观察着时机。"


def printed(table: ReadableTable, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO())
    console.print(table)
    return console.file.getvalue().splitlines()


def memories() -> ReadableTable:
    return ReadableTable(
        [number("id"), number("score"), number("importance"), Column("kind", wrap=False),
         "memory"],
        [(12, "0.873", "0.500", "reflection", MEMORY), (1234567, "12.125", "1.000",
                                                        "observation", WIDE_CJK)],
        title="Maria Lopez: 2 of 57 memories")


def has_line(pattern: str, text: str) -> bool:
    """Whether one printed line, whole, matches ``pattern``."""
    return re.search(rf"^{pattern}\s*$", text, re.MULTILINE) is not None


def words_in_order(lines: list[str], text: str) -> bool:
    """Whether ``text``'s words all appear, in order, in what was printed."""
    joined = " ".join(lines)
    at = 0
    for word in text.split():
        at = joined.find(word, at)
        if at < 0:
            return False
        at += len(word)
    return True


def test_a_table_that_fits_keeps_each_row_on_one_line():
    lines = printed(memories(), 200)
    assert any(MEMORY in line and "12" in line and "0.873" in line for line in lines)
    assert all(cell_len(line) <= 200 for line in lines)


def test_a_narrow_table_wraps_its_text_and_keeps_numbers_and_headers_whole():
    lines = printed(memories(), 90)
    assert all(cell_len(line) <= 90 for line in lines), lines
    assert "…" not in "\n".join(lines)
    header = next(line for line in lines if "importance" in line)
    assert all(name in header for name in ("id", "score", "importance", "kind", "memory"))
    assert any("1234567" in line and "12.125" in line and "observation" in line
               for line in lines)
    assert words_in_order(lines, MEMORY)
    assert sum(1 for line in lines if "│" in line and "Maria" not in line) > 2  # wrapped


def test_a_table_too_narrow_to_wrap_folds_rows_into_key_value_lines():
    lines = printed(memories(), 40)
    assert all(cell_len(line) <= 40 for line in lines), lines
    text = "\n".join(lines)
    assert "…" not in text and "┃" not in text
    assert has_line(r"id:\s+1234567", text)
    assert has_line(r"importance:\s+0\.500", text)
    assert has_line(r"kind:\s+observation", text)
    assert words_in_order(lines, MEMORY)
    assert lines[0].startswith("Maria Lopez: 2 of 57 memories")


def cli(*args: str, columns: int = 80):
    """The command run as in a pipe, at ``columns`` wide (COLUMNS, as a terminal sets)."""
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(app, list(args))


def test_pages_at_80_columns_shows_whole_sentences_and_counts(tmp_path):
    first = ("The committee that met in the old harbour town on Tuesday agreed, after a long "
             "and difficult debate, to rebuild the bridge.")
    document = tmp_path / "notes.en"
    document.write_text(f"{first} It opens in 2027.\n", encoding="utf-8")
    done = cli("pages", str(document), "--page-sentences", "1")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert "…" not in done.output and all(cell_len(line) <= 80 for line in lines)
    assert "1 line, 2 sentences, 2 pages (en)" in " ".join(done.output.split())
    assert words_in_order(lines, first)
    for page in json.loads(cli("pages", str(document), "--page-sentences", "1", "--json").output):
        assert any(re.search(rf"\b{page['page']}\b.*\b1\b.*\b{page['chars']}\b", line)
                   for line in lines)
    assert all(name in done.output for name in ("page", "sentences", "chars", "starts with"))


def test_sim_make_json_is_one_object_with_the_tables_counts(tmp_path):
    done = cli("sim", "make", "--docs", "1", "--out", str(tmp_path / "synth"), "--json")
    assert done.exit_code == 0, done.output
    made = json.loads(done.output)
    world = json.loads((tmp_path / "synth" / "world.json").read_text("utf-8"))
    assert made["documents"] == 1 and made["simulated"] is True
    assert made["sentences"] == world["documents"][0]["sentences"]
    assert [row["kind"] for row in made["terms"]] == ["entity", "reference", "phrase"]
    assert sum(row["count"] for row in made["terms"]) == world["documents"][0]["terms"]
    table = cli("sim", "make", "--docs", "1", "--out", str(tmp_path / "synth"), columns=20)
    assert table.exit_code == 0 and "…" not in table.output
    assert has_line(rf"marked uses:\s+{made['terms'][0]['marked_uses']}", table.output)
    assert "1 document, " in table.output


def test_record_json_and_replay_of_one_scenario(tmp_path):
    folder = tmp_path / "scenarios"
    (folder / "cassettes").mkdir(parents=True)
    shutil.copy(REPO / "scenarios" / "chat-echo.yaml", folder)
    recorded = cli("record", str(folder / "chat-echo.yaml"), "--model", "sim:echo", "--json")
    assert recorded.exit_code == 0, recorded.output
    row = json.loads(recorded.output)
    assert row["name"] == "chat-echo" and row["passed"] and len(row["checks"]) == 3
    replayed = cli("replay", str(folder), columns=30)
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 scenario, 0 failed" in " ".join(replayed.output.split())
    assert "…" not in replayed.output and has_line(r"checks:\s+3/3", replayed.output)
    borderless = cli("replay", str(folder), columns=40).output  # short cells: one row still
    assert "…" not in borderless and re.search(r"chat-echo\s+chat\s+3/3\s+pass", borderless)
    assert [r["passed"] for r in json_objects(cli("replay", str(folder), "--json").output)
            ] == [True]


def test_models_list_folds_at_40_columns_without_cutting_the_path():
    done = cli("models", "list", columns=40)
    assert done.exit_code == 0 and "…" not in done.output
    (row,) = json.loads(cli("models", "list", "--json").output)
    assert "".join(row["path"].split()) in "".join(done.output.split())
