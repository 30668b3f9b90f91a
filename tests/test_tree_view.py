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
    key_text,
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


def labels(figure) -> set[str]:
    return {t.get_text() for t in figure.axes[0].texts}


def caption(figure) -> str:
    return figure.legends[0].get_title().get_text()


def test_every_node_is_labelled_with_its_action_q_and_visits(tmp_path):
    small = tree_figure(graph_of(hand_tree(), tmp_path))
    assert {"root\nQ 0.700\nn=14", "sum\nQ 0.800\nn=5", "q0.9v3\nQ 0.900\nn=3",
            "all"} <= labels(small)
    assert caption(small) == "node: its action; Q = mean reward of the rollouts through it, " \
                             "n = visits"
    shallow = tree_figure(graph_of(hand_tree(), tmp_path), max_depth=1)
    assert not any(text.startswith("q0.9v3") for text in labels(shallow))


def modules_tree() -> Tree:
    """A LongMT-shaped tree: a forced first page, then 8 module sets per page, of which
    two are visited below each of the first page's sets."""
    tree = Tree.new(task="doc0", env="longmt", seed=0, tools=[], options={"q": "mean"},
                    baseline_score=1.0)
    short = {"view_summaries": "S", "view_pages": "P", "lookup_entities": "E"}
    sets = [list(c) for k in range(4) for c in itertools.combinations(short, k)]
    first = tree.add_child(0, [], "none")
    visit(first, 16, 1.0)
    for modules in sets:
        node = tree.add_child(first.id, modules, "+".join(short[m] for m in modules) or "none")
        visit(node, 2, 0.9 + 0.01 * len(node.label))
        for below in sets:
            child = tree.add_child(node.id, below, "+".join(short[m] for m in below) or "none")
            if below in (["view_summaries"], ["view_pages"]):
                visit(child, 1, 1.0)
    tree.root.visits, tree.root.wins = 16, 16.0
    return tree


def test_a_wide_tree_folds_unvisited_children_and_keeps_a_readable_size(tmp_path):
    graph = graph_of(modules_tree(), tmp_path)
    figure = tree_figure(graph)
    width, height = figure.get_size_inches()
    assert width <= 18 and width / height <= 3  # was 30 x 6 inches with 64 leaves
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts.count("6\nunvisited") == 8  # each parent's 6 unvisited children in one node
    assert "S+P+E\nQ 0.950\nn=2" in texts and len(texts) == 1 + 1 + 8 + 8 * (2 + 1)


def test_the_caption_spells_out_abbreviated_labels(tmp_path):
    graph = graph_of(modules_tree(), tmp_path)
    assert key_text(graph) == "S = view_summaries, P = view_pages, E = lookup_entities"
    assert key_text(graph) in caption(tree_figure(graph)).splitlines()
    assert key_text(graph_of(hand_tree(), tmp_path)) == ""  # labels that abbreviate nothing
    assert "S = view_summaries" in tree_html(graph)


def test_a_deep_tree_is_cut_to_a_readable_depth_and_says_so(tmp_path):
    graph = graph_of(random_tree(1, 100), tmp_path)
    figure = tree_figure(graph)
    assert figure.get_size_inches()[0] <= 18 and labels(figure)
    deepest = max(d for _, d in graph.nodes(data="depth"))
    assert f"drawn to depth 2 of {deepest}: " in caption(figure)
    assert "deeper nodes not shown" in caption(figure)


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


def test_html_shows_tokens_only_where_they_were_counted(tmp_path):
    tree = hand_tree()
    assert "tokens=" not in tree_html(graph_of(tree, tmp_path))  # none recorded: no tokens=0
    tree.nodes[2].tokens = 1234
    page = tree_html(graph_of(tree, tmp_path))
    assert page.count("tokens=") == 1 and "score=72 tokens=1234" in page


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
    (["{run}", "broken", "--html", "x.html"], "broken.json: not a "),
    (["{run}", "empty", "--html", "x.html"], "no root node"),
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
