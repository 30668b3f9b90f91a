"""Each search-tree node records the model tokens its step used, a resumed search keeps
them byte for byte, and event logs written before nodes counted tokens still replay."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from stepwise.agents.longmt.environment import LongMTEnvironment
from stepwise.documents.pages import paginate
from stepwise.llm import from_uri
from stepwise.llm.cache import CachingChatModel
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.view import tree_html
from stepwise.sim.translation import WorldOracle, make_documents


def world_env() -> LongMTEnvironment:
    doc = make_documents(1, 0)[0]
    model = CachingChatModel(model=from_uri("sim:translator"))
    return LongMTEnvironment(doc.id, paginate(doc.src, "qsy", page_sentences=5), doc.ref, model,
                             src="qsy", tgt="en", oracle=WorldOracle(doc.ref))


def explore(log: Path | None, simulations: int) -> Explorer:
    explorer = Explorer(world_env(), ExploreOptions(simulations=simulations, seed=1),
                        EventLog(log), env_name="longmt", simulated=True)
    explorer.run()
    return explorer


def json_graph(explorer: Explorer) -> nx.DiGraph:
    return nx.node_link_graph(json.loads(explorer.tree.to_json()), edges="links")


def test_explored_longmt_nodes_carry_their_steps_tokens_and_the_html_shows_them():
    explorer = explore(None, 12)
    visited = [n for n in explorer.tree.nodes.values() if n.depth and n.visits]
    assert len(visited) > 3
    for node in visited:  # the tokens of the node's own page step, as the episode recorded
        step = explorer.state_of(node.id)["steps"][node.depth - 1]
        assert node.tokens == step["tokens_in"] + step["tokens_out"] > 0
    assert explorer.tree.root.tokens == 0  # the root takes no step
    page = tree_html(json_graph(explorer))
    assert page.count("tokens=") == len(visited)


def test_a_resumed_search_keeps_the_token_counts_byte_for_byte(tmp_path):
    straight = explore(None, 12).tree.to_json()
    explore(tmp_path / "events.jsonl", 5)
    resumed = explore(tmp_path / "events.jsonl", 12).tree.to_json()
    assert resumed.replace('"simulations": 5', '"simulations": 12') == straight
    assert '"tokens": 0,' in straight and json.loads(straight)["nodes"][1]["tokens"] > 0


def test_an_event_log_without_token_counts_replays(tmp_path):
    log = tmp_path / "events.jsonl"
    explore(log, 8)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert all("tokens" in item for event in events for item in event["batch"])
    for event in events:  # as an explore written before nodes counted tokens logged it
        for item in event["batch"]:
            del item["tokens"]
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(e) + "\n" for e in events))
    replayed = Explorer(world_env(), ExploreOptions(simulations=8, seed=1), EventLog(old),
                        env_name="longmt", simulated=True)
    assert replayed.replay(EventLog(old).read()) == 8
    fresh = explore(None, 8).tree
    assert all(n.tokens == 0 for n in replayed.tree.nodes.values())
    assert [n.visits for n in replayed.tree.nodes.values()] == \
        [n.visits for n in fresh.nodes.values()]
