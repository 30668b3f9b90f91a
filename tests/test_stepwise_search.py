"""Step-by-step search (a budget per decision, then the root moves to the best child): every
decision on the committed path is fully searched and gives a pair, resumes are exact, a
budget below a decision's actions is refused, and the run reports decisions and breadth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import pytest

from stepwise.search.events import EventLog
from stepwise.search.explorer import BudgetError, ExploreOptions, Explorer, check_budget
from stepwise.search.pairs import extract_pairs
from stepwise.search.run import decision_report, explore_tasks
from stepwise.search.tree import commit_entropy, visit_entropy
from tests.test_explorer import ChainEnv


class LongChainEnv(ChainEnv):
    """Eight steps of three actions, the first of them with one action only."""

    task_id = "long"
    best = (0, 2, 0, 1, 1, 2, 0, 2)

    def actions(self, state):
        return [0] if not state else [0, 1, 2]


def run(env=None, log: Path | None = None, stop_after: int | None = None, **options) -> Explorer:
    """A search; ``stop_after`` interrupts it after that many simulations (as a kill would)."""

    def interrupt(iteration: int) -> None:
        if stop_after is not None and iteration >= stop_after:
            raise KeyboardInterrupt

    explorer = Explorer(env or LongChainEnv(), ExploreOptions(**options), EventLog(log),
                        env_name="chain", on_iteration=interrupt)
    try:
        explorer.run()
    except KeyboardInterrupt:
        pass
    return explorer


def test_every_committed_decision_has_all_children_visited_and_a_pair():
    explorer = run(per_step=6, seed=1)
    tree = explorer.tree
    spine = tree.attrs["spine"]
    env = LongChainEnv()
    assert [tree.nodes[n].action for n in spine[1:]] == list(env.best)  # reaches the end
    assert explorer.finished() and tree.nodes[spine[-1]].depth == len(env.best)
    for node_id in spine[:-1]:
        children = tree.nodes[node_id].children
        assert children and all(tree.nodes[c].visits for c in children)
        committed = spine[spine.index(node_id) + 1]
        assert committed in children
    # one simulation for the one-action first step, then six per decision: linear in length
    assert tree.root.visits == 1 + 6 * (len(env.best) - 1)
    # each decision's children's visits as committed: its own budget, all of them tried
    assert tree.attrs["spine_visits"][0] == [1]
    assert all(sum(v) >= 6 and min(v) >= 1 and len(v) == 3  # earlier decisions add some
               for v in tree.attrs["spine_visits"][1:])
    assert len(tree.attrs["spine_visits"]) == len(spine) - 1
    rows, stats = extract_pairs(tree.to_graph())
    assert stats.parents_seen == len(env.best) and stats.one_action == 1
    assert stats.pairs == len(env.best) - 1
    assert [r["meta"]["parent_id"] for r in rows] == spine[1:-1]
    assert all(r["meta"]["chosen_action"] == env.best[r["meta"]["depth"]] for r in rows)


def test_commit_takes_max_q_then_visits_then_the_earlier_child():
    explorer = Explorer(LongChainEnv(), ExploreOptions(per_step=3))
    tree = explorer.tree
    for action, visits, wins in ((0, 2, 3.0), (1, 3, 4.5), (2, 1, 1.5), (3, 3, 4.5)):
        child = tree.add_child(0, action, str(action))
        child.visits, child.wins = visits, wins
    explorer._commit()  # Q 1.5 for all: nodes 2 and 4 have most visits, 2 is the earlier
    assert explorer.decision == 2 and tree.attrs["spine"] == [0, 2] and explorer.spent == 0
    tree.nodes[3].wins = 1.6  # a better Q wins over more visits
    explorer.decision = 0
    explorer._commit()
    assert explorer.decision == 3


@pytest.mark.parametrize("parallel", [1, 3])
def test_a_stopped_step_search_resumes_to_the_same_tree(tmp_path, parallel):
    straight = run(per_step=5, seed=3, parallel=parallel, reward="page").tree.to_json()
    log = tmp_path / "events.jsonl"
    for stop in (4, 13, 21):  # mid-decision, and several stops in one run
        stopped = run(log=log, stop_after=stop, per_step=5, seed=3, parallel=parallel,
                      reward="page")
        assert not stopped.finished() and stop <= stopped.tree.root.visits < stop + parallel
    with log.open("a") as handle:
        handle.write('{"i": 22, "torn')  # a kill in the middle of a write
    resumed = run(log=log, per_step=5, seed=3, parallel=parallel, reward="page").tree.to_json()
    assert resumed == straight
    assert json.loads(straight)["graph"]["options"]["per_step"] == 5


def test_plain_trees_keep_their_bytes():
    tree = json.loads(run(simulations=20, seed=0).tree.to_json())
    assert "spine" not in tree["graph"] and "per_step" not in tree["graph"]["options"]


def test_a_budget_below_the_actions_is_refused_with_the_minimum():
    with pytest.raises(BudgetError) as refused:
        check_budget(LongChainEnv(), ExploreOptions(per_step=2), "a chain step")
    assert str(refused.value) == "--per-step 2 is below the 3 actions of a chain step: " \
                                 "give at least 3"
    assert refused.value.minimum == 3
    check_budget(LongChainEnv(), ExploreOptions(per_step=3))  # enough
    check_budget(LongChainEnv(), ExploreOptions(per_step=2, width=2))  # two are expanded
    with pytest.raises(BudgetError, match="give at least 3"):  # the explorer checks too
        Explorer(LongChainEnv(), ExploreOptions(per_step=2)).run()
    with pytest.raises(ValueError, match="early_stop"):
        ExploreOptions(per_step=4, early_stop=3)


def test_visit_entropy_is_one_when_even_and_zero_when_all_on_one_child():
    graph = nx.DiGraph()
    graph.add_node(0, depth=0, visits=6)
    for child, visits in ((1, 2), (2, 2), (3, 2)):
        graph.add_node(child, depth=1, visits=visits)
        graph.add_edge(0, child)
    for child, visits in ((4, 2), (5, 0)):
        graph.add_node(child, depth=2, visits=visits)
        graph.add_edge(1, child)
    assert visit_entropy(graph) == {0: [pytest.approx(1.0)], 1: [0.0]}
    graph.nodes[3]["visits"] = 8
    share = [0.5 / 3, 0.5 / 3, 2 / 3]
    expected = -sum(p * math.log(p) for p in share) / math.log(3)
    assert visit_entropy(graph, [0])[0] == [pytest.approx(expected)]
    graph.graph.update(spine=[0, 3], spine_visits=[[2, 2, 2]])  # as committed, not as now
    assert commit_entropy(graph) == {0: [pytest.approx(1.0)]}


def test_decision_report_names_why_decisions_gave_no_pair():
    report = decision_report({"parents_seen": 5, "pairs": 2, "one_action": 1,
                              "no_preference": 1, "too_few_children": 1}, [3, 2])
    assert report["seen"] == 5 and report["with_pair"] == 2
    assert report["no_pair_because"]["one_action"] == 1
    assert report["no_pair_because"]["all_children_equal_q"] == 1
    assert report["no_pair_because"]["too_few_visits"] == 1
    assert report["actions_differ"] == {"seen": 3, "with_pair": 2, "share": 0.6667}
    assert "actions_differ" not in decision_report({}, [0, 0])


def test_step_search_on_the_synthetic_world_pairs_every_page_that_matters(tmp_path):
    """Simulated (the synthetic translation world, 2 documents, 5-sentence pages, per-page
    rewards, 8 simulations per decision): every page after the first at which not every
    module set is among the exact best gets a pair, and chosen is always among them."""
    from stepwise.agents.longmt.environment import LongMTEnvironment
    from stepwise.documents.pages import paginate
    from stepwise.llm import from_uri
    from stepwise.llm.cache import CachingChatModel
    from stepwise.sim.translation import WorldOracle, make_documents

    model = CachingChatModel(model=from_uri("sim:translator"))
    world = {d.id: d for d in make_documents(2, 0)}

    def make_env(task_id):
        doc = world[task_id]
        return LongMTEnvironment(task_id, paginate(doc.src, "qsy", page_sentences=5), doc.ref,
                                 model, src="qsy", tgt="en", oracle=WorldOracle(doc.ref))

    with pytest.raises(BudgetError, match="give at least 8"):
        check_budget(make_env("synth-000"), ExploreOptions(per_step=7), "a LongMT page")
    report = explore_tasks(list(world), make_env, ExploreOptions(per_step=8, reward="page"),
                           tmp_path, env_name="longmt", simulated=True)
    decisions = report.decisions
    pages = sum(len(paginate(d.src, "qsy", page_sentences=5).pages) for d in world.values())
    assert decisions["seen"] == pages and decisions["no_pair_because"]["one_action"] == 2
    assert decisions["actions_differ"]["share"] >= 0.9
    assert report.optimal_rates["chosen_is_best"] >= 0.9
    assert report.optimal_rates["rejected_is_best"] <= 0.1
    assert report.iterations <= 8 * pages
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["depth"] for row in summary["visit_entropy"]][:2] == [1, 2]
    assert all(0 < row["spine_entropy"] <= 1 for row in summary["visit_entropy"]
               if row["depth"] < pages // 2)


def test_explore_cli_refuses_a_small_per_step_budget_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    base = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5"]
    result = CliRunner().invoke(app, [*base, "--per-step", "4", "--out", str(tmp_path / "a")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "--per-step 4 is below the 8 actions of a LongMT page: give at least 8")
    result = CliRunner().invoke(app, [*base, "--per-step", "8", "--simulations", "8",
                                      "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "without --simulations" in result.stderr
    result = CliRunner().invoke(app, [*base, "--per-step", "8", "--reward", "page",
                                      "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.stderr
    assert "decisions:" in result.stdout and "with a pair" in result.stdout
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["decisions"]["with_pair"] == summary["pairs"] >= 1


@pytest.mark.slow
def test_a_step_run_cut_mid_decision_resumes_to_the_same_bytes(tmp_path):
    """A run folder as a kill leaves it (event logs cut mid-decision, a torn last line, no
    trees or pairs yet) resumes to the trees and pairs of an uninterrupted run."""
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.sim.translation import make_documents, write_dataset

    dataset = write_dataset(make_documents(2, 0), tmp_path / "world")
    base = ["explore", str(dataset), "-m", "sim:translator", "--page-sentences", "5",
            "--per-step", "9", "--reward", "page", "--seed", "2"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.stderr
    cut = tmp_path / "b"
    (cut / "events").mkdir(parents=True)
    (cut / "run.json").write_bytes((tmp_path / "a" / "run.json").read_bytes())
    for keep, log in zip((14, 3), sorted((tmp_path / "a" / "events").iterdir()), strict=True):
        lines = log.read_bytes().splitlines(keepends=True)
        assert len(lines) > keep
        (cut / "events" / log.name).write_bytes(b"".join(lines[:keep]) + lines[keep][:20])
    result = CliRunner().invoke(app, [*base, "--out", str(cut), "--resume"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "a" / "pairs.jsonl").read_bytes() == (cut / "pairs.jsonl").read_bytes()
    for tree in (tmp_path / "a" / "trees").iterdir():
        assert tree.read_bytes() == (cut / "trees" / tree.name).read_bytes()
        assert json.loads(tree.read_text())["graph"]["spine"]


def test_a_rollout_horizon_gives_the_same_pairs_for_fewer_calls(tmp_path):
    """Simulated (the synthetic translation world, one document, 5-sentence pages): with
    page rewards a page's reward needs none of the pages after it, so rollouts that stop
    at once (horizon 0) or a page later give the pairs that full rollouts give, with
    fewer translator calls."""
    from stepwise.agents.longmt.environment import LongMTEnvironment
    from stepwise.documents.pages import paginate
    from stepwise.llm import from_uri
    from stepwise.llm.cache import CachingChatModel
    from stepwise.sim.translation import WorldOracle, make_documents

    (doc,) = make_documents(1, 0)
    runs = {}
    for horizon in (None, 0, 1):
        model = CachingChatModel(model=from_uri("sim:translator"))
        env = LongMTEnvironment(doc.id, paginate(doc.src, "qsy", page_sentences=5), doc.ref,
                                model, src="qsy", tgt="en", oracle=WorldOracle(doc.ref))
        explorer = run(env, per_step=8, reward="page", horizon=horizon)
        rows, _ = extract_pairs(explorer.tree.to_graph())
        pairs = [(p["prompt"], p["chosen"], p["rejected"], p["meta"]["q_chosen"],
                  p["meta"]["q_rejected"]) for p in rows]
        spine = explorer.tree.attrs["spine"]
        runs[horizon] = pairs, spine, model.counts["calls"] + model.counts["saved"]
    full, cut, next_page = runs[None], runs[0], runs[1]
    assert len(full[0]) >= 5 and cut[:2] == full[:2] and next_page[:2] == full[:2]
    assert cut[2] < next_page[2] < full[2] / 2  # requests, answered or not
    assert explorer.tree.attrs["options"]["horizon"] == 1
    assert "horizon" not in ExploreOptions(per_step=8, reward="page").dump()


def test_a_horizon_is_refused_without_page_rewards_or_partial_scores(tmp_path):
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from stepwise.cli import app
    from stepwise.search.options import HorizonError
    from stepwise.sim.translation import make_documents, write_dataset

    with pytest.raises(ValidationError, match="needs per-step rewards"):
        ExploreOptions(horizon=2)
    with pytest.raises(HorizonError, match="scores a step only once its episode is finished"):
        Explorer(LongChainEnv(), ExploreOptions(horizon=2, reward="page"))
    dataset = write_dataset(make_documents(1, 0), tmp_path / "world")
    result = CliRunner().invoke(app, ["explore", str(dataset), "-m", "sim:translator",
                                      "--per-step", "8", "--horizon", "1",
                                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and not (tmp_path / "a").exists()
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --horizon cuts rollouts short, so it needs --reward page")
