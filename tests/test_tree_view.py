"""Drawing a search tree: the layout, the marked pairs, the PNG, the escaped HTML, the CLI."""

from __future__ import annotations

import itertools
import random

import pytest
from typer.testing import CliRunner

import stepwise.cli.tree  # noqa: F401 -- registers `stepwise tree`
from stepwise.cli.common import app
from stepwise.search.tree import Tree, load_tree
from stepwise.search.view import (
    best_path,
    layout,
    marked_pairs,
    title,
    tree_figure,
    tree_html,
    write_html,
    write_png,
)

HOSTILE = '<script>alert(1)</script> "quotes" & more'


def visit(node, visits, q):
    node.visits, node.wins, node.best, node.score_sum = visits, q * visits, q, 90.0 * q * visits


def hand_tree(**attrs) -> Tree:
    """root -> 1 (Q .5), 2 (Q .8, 5 visits), 3 (Q .8, 5 visits); 2 -> 7 (.9, 2), 8 (.9, 3), 9 (.3).

    Q ties go to more visits, then the earlier node: the best path is 0, 2, 8.
    """
    tree = Tree.new(**{"task": "doc0", "env": "longmt", "seed": 0, "tools": [],
                       "options": {"q": "mean"}, "baseline_score": 90.0, **attrs})
    for label, visits, q in (("none", 4, 0.5), ("sum", 5, 0.8), ("ent", 5, 0.8)):
        visit(tree.add_child(0, [label], label), visits, q)
    visit(tree.add_child(1, ["sum"], "sum"), 2, 0.9)
    visit(tree.add_child(1, ["ent"], "ent"), 2, 0.1)
    tree.add_child(1, ["all"], "all")  # never visited
    for visits, q in ((2, 0.9), (3, 0.9), (1, 0.3)):
        visit(tree.add_child(2, ["none"], f"q{q}v{visits}"), visits, q)
    tree.root.visits, tree.root.wins = 14, 14 * 0.7
    return tree


def graph_of(tree: Tree, tmp_path):
    path = tmp_path / "run" / "trees" / f"{tree.attrs['task']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tree.to_json(), encoding="utf-8")
    return load_tree(path)


def random_tree(seed: int, size: int) -> Tree:
    rng = random.Random(seed)
    tree = Tree.new(task="big", env="sim:translation", seed=seed, tools=[],
                    options={"q": "mean"}, baseline_score=1.0)
    for _ in range(size - 1):
        visit(tree.add_child(rng.randrange(len(tree.nodes)), None, "a"), rng.randint(1, 9),
              rng.random())
    return tree


@pytest.mark.parametrize("seed", range(5))
def test_layout_centres_parents_and_never_overlaps(tmp_path, seed):
    graph = graph_of(random_tree(seed, 80), tmp_path)
    pos = layout(graph)
    assert set(pos) == set(graph.nodes)
    by_depth: dict[float, list[float]] = {}
    for node, (x, y) in pos.items():
        assert y == -graph.nodes[node]["depth"]
        by_depth.setdefault(y, []).append(x)
        kids = sorted(graph.successors(node))
        if kids:
            assert x == pytest.approx((pos[kids[0]][0] + pos[kids[-1]][0]) / 2)
            assert [pos[k][0] for k in kids] == sorted(pos[k][0] for k in kids)
    for xs in by_depth.values():
        xs.sort()
        assert all(b - a >= 1 for a, b in itertools.pairwise(xs))


def test_best_path_and_chosen_rejected(tmp_path):
    graph = graph_of(hand_tree(), tmp_path)
    assert best_path(graph) == [0, 2, 8]
    assert marked_pairs(graph) == {0: (2, 1), 2: (8, 9)}


def test_no_pair_where_all_children_tie(tmp_path):
    tree = Tree.new(task="t", env="longmt", seed=0, tools=[], options={"q": "mean"},
                    baseline_score=1.0)
    for _ in range(3):
        visit(tree.add_child(0, None, "a"), 2, 0.5)
    graph = graph_of(tree, tmp_path)
    assert best_path(graph) == [0, 1] and marked_pairs(graph) == {}


def test_title_says_simulated(tmp_path):
    assert title(graph_of(hand_tree(), tmp_path)) == "doc0 · longmt · 14 simulations"
    assert title(graph_of(hand_tree(simulated=True), tmp_path)).endswith("(simulated)")
    assert title(graph_of(random_tree(0, 3), tmp_path)).endswith("(simulated)")


def test_png_is_written_and_valid(tmp_path):
    graph = graph_of(hand_tree(), tmp_path)
    path = write_png(graph, tmp_path / "out" / "tree.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert [p.name for p in path.parent.iterdir()] == ["tree.png"]  # no temp file left


def test_labels_only_on_small_trees_and_max_depth(tmp_path):
    small = tree_figure(graph_of(hand_tree(), tmp_path))
    assert {t.get_text() for t in small.axes[0].texts} >= {"root", "sum", "q0.9v3"}
    assert not tree_figure(graph_of(random_tree(1, 100), tmp_path)).axes[0].texts
    shallow = tree_figure(graph_of(hand_tree(), tmp_path), max_depth=1)
    assert "q0.9v3" not in {t.get_text() for t in shallow.axes[0].texts}


def test_html_escapes_hostile_text(tmp_path):
    tree = hand_tree(task=HOSTILE)
    node = tree.nodes[2]
    node.label, node.action = HOSTILE, [HOSTILE]
    node.prompt = [{"role": "user", "content": HOSTILE}]
    node.completion = [{"role": "assistant", "content": HOSTILE, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "view_pages", "arguments": '{"q": "<script>x</script>"}'}}]}]
    page = tree_html(graph_of(tree, tmp_path))
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quotes&quot; &amp; more" in page
    assert "view_pages" in page and 'class="tag chosen"' in page and 'class="tag rejected"' in page
    path = write_html(graph_of(tree, tmp_path), tmp_path / "tree.html")
    assert path.read_text(encoding="utf-8") == page


# ---- the command line ---------------------------------------------------------------------

runner = CliRunner()


def test_cli_writes_png_and_html(tmp_path):
    graph_of(hand_tree(), tmp_path)
    png, page = tmp_path / "t.png", tmp_path / "t.html"
    result = runner.invoke(app, ["tree", str(tmp_path / "run"), "doc0", "--png", str(png),
                                 "--html", str(page), "--max-depth", "2"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG" and "<details" in page.read_text()
    assert str(png) in result.output and str(page) in result.output


def test_cli_help_has_an_example():
    result = runner.invoke(app, ["tree", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere", "doc0", "--png", "x.png"], "no such run folder"),
    (["{run}", "doc9", "--png", "x.png"], "no tree for task 'doc9' in"),
    (["{run}", "doc0"], "give --png FILE and/or --html FILE"),
    (["{empty}", "doc0", "--html", "x.html"], "holds no trees"),
    (["{run}", "broken", "--html", "x.html"], "not a tree JSON"),
    (["{run}", "empty", "--html", "x.html"], "the tree has no root node"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    graph_of(hand_tree(), tmp_path)
    (tmp_path / "run" / "trees" / "broken.json").write_text('{"nodes": 1}')
    (tmp_path / "run" / "trees" / "empty.json").write_text('{"nodes": [], "links": []}')
    (tmp_path / "empty").mkdir()
    args = [a.format(run=tmp_path / "run", empty=tmp_path / "empty") for a in args]
    result = runner.invoke(app, ["tree", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    if "doc9" in args:
        assert "tasks: broken, doc0, empty" in lines[0]
