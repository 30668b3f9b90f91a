"""The search tree: nodes with visits, wins and Q, as networkx node-link JSON.

A node is a decision point reached by its ``action`` from its parent. The tree holds no
agent state: states live in the explorer's memo (they fork for free) and the tree is
rebuilt from the event log on resume. What a tree JSON (``networkx.node_link_data``,
``edges="links"``) holds per node:

- ``id`` (int, creation order; the root is 0), ``parent`` (int or null), ``depth``
- ``action`` (a JSON value, null at the root) and ``label`` (a short name for it)
- ``visits``, ``wins`` (sum of rewards), ``q`` (wins / visits, or the best reward under
  ``q="max"``), ``best`` (the best reward seen), ``score`` (mean finished-episode score of
  the rollouts through it), ``step_score`` (this step's own reward in the last rollout
  that passed, when per-step rewards are used), ``tokens`` (model tokens its step used)
- ``prompt`` (chat messages of the decision taken AT this node; on expanded nodes) and
  ``completion`` (the assistant step that took ``action``; on every non-root node), both
  lists of OpenAI-style message dicts with tool-call arguments as JSON strings
- ``optimal`` (the best action at this node's state when the environment knows it) and
  ``best_actions`` (all its best actions, ties kept, when the environment has
  ``best_actions``), else null
- ``call_tokens`` (the model call that generated ``completion``, when one did and its
  backend recorded tokens: ``prompt_token_ids``, ``completion_token_ids``,
  ``completion_logprobs``, ``model``; see ``stepwise.llm.token_data``), else null

Graph attributes: ``task``, ``env``, ``seed``, ``options``, ``baseline_score``, ``tools``;
a tree searched step by step also has ``spine``, the committed path of decisions (node
ids from the root), and ``spine_visits``, each committed decision's children's visits at
the moment it was committed (later decisions' simulations all pass through the committed
child, so the final counts no longer say how broad that decision's search was).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from stepwise.errors import StepwiseError, error_line
from stepwise.jsonl import read_json


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    action: Any = None
    label: str = "root"
    visits: int = 0
    wins: float = 0.0
    best: float = -math.inf
    score_sum: float = 0.0
    step_score: float | None = None
    tokens: int = 0
    children: list[int] = field(default_factory=list)
    prompt: list[dict] | None = None
    completion: list[dict] | None = None
    optimal: Any = None
    best_actions: list[Any] | None = None
    call_tokens: dict[str, Any] | None = None

    def q(self, aggregate: str = "mean") -> float:
        if not self.visits:
            return 0.0
        return self.best if aggregate == "max" else self.wins / self.visits


@dataclass
class Tree:
    attrs: dict[str, Any]
    nodes: dict[int, Node] = field(default_factory=dict)
    aggregate: str = "mean"

    @classmethod
    def new(cls, **attrs: Any) -> Tree:
        tree = cls(attrs=attrs, aggregate=attrs.get("options", {}).get("q", "mean"))
        tree.nodes[0] = Node(0, None, 0)
        return tree

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add_child(self, parent: int, action: Any, label: str) -> Node:
        node = Node(len(self.nodes), parent, self.nodes[parent].depth + 1, action, label)
        self.nodes[node.id] = node
        self.nodes[parent].children.append(node.id)
        return node

    def path_to(self, node_id: int) -> list[int]:
        path = [node_id]
        while self.nodes[path[-1]].parent is not None:
            path.append(self.nodes[path[-1]].parent)
        return path[::-1]

    def q(self, node_id: int) -> float:
        return self.nodes[node_id].q(self.aggregate)

    def ranked_children(self, node_id: int) -> list[tuple[Rank, int]]:
        """Each visited child's ``rank`` and id."""
        return [(node_rank(child.q(self.aggregate), child.visits, child.id), child.id)
                for child in (self.nodes[c] for c in self.nodes[node_id].children)
                if child.visits]

    def best_child(self, node_id: int) -> Node | None:
        """The best-ranked visited child (``node_rank``); None for a leaf."""
        children = self.ranked_children(node_id)
        return self.nodes[max(children)[1]] if children else None

    def best_path(self) -> list[int]:
        """``follow_best`` on this tree: the same path ``best_path`` finds in its graph."""
        return follow_best(0, self.ranked_children, self.attrs.get("spine"))

    def to_graph(self) -> nx.DiGraph:
        graph = nx.DiGraph(**self.attrs)
        for node in self.nodes.values():
            graph.add_node(node.id, parent=node.parent, depth=node.depth, action=node.action,
                           label=node.label, visits=node.visits, wins=node.wins,
                           q=node.q(self.aggregate), best=node.best if node.visits else None,
                           score=node.score_sum / node.visits if node.visits else None,
                           step_score=node.step_score, tokens=node.tokens,
                           prompt=node.prompt, completion=node.completion,
                           optimal=node.optimal, best_actions=node.best_actions,
                           call_tokens=node.call_tokens)
            if node.parent is not None:
                graph.add_edge(node.parent, node.id)
        return graph

    def to_json(self) -> str:
        data = nx.node_link_data(self.to_graph(), edges="links")
        # Keys keep their order: chat templates render tool schemas as stored.
        return json.dumps(data, ensure_ascii=False, indent=1)


# -- the best path: one rule for a Tree and for its graph ------------------------------------

Rank = tuple[float, int, int]


def node_rank(q: float, visits: int, node_id: int) -> Rank:
    """Higher is better: Q, then more visits, then the earlier node."""
    return float(q), int(visits), -int(node_id)


def rank(graph: nx.DiGraph, node: int) -> Rank:
    """``node_rank`` of a node of a tree graph."""
    data = graph.nodes[node]
    return node_rank(data.get("q") or 0.0, data.get("visits") or 0, node)


def visited_children(graph: nx.DiGraph, parent: int, min_visits: int = 1) -> list[int]:
    least = max(min_visits, 1)
    return [c for c in graph.successors(parent) if int(graph.nodes[c].get("visits") or 0) >= least]


def follow_best(root: int | None, ranked_children: Callable[[int], list[tuple[Rank, int]]],
                spine: Sequence[int] | None = None) -> list[int]:
    """The best path, whatever holds the tree: a step-by-step search's committed ``spine``
    when it has one, else from ``root`` the best-ranked child at each level (the seed's
    layers; ``ranked_children`` gives each candidate child's rank and id)."""
    if spine:
        return list(spine)
    path = [] if root is None else [root]
    while path and (children := ranked_children(path[-1])):
        path.append(max(children)[1])
    return path


def best_path(graph: nx.DiGraph, min_visits: int = 1) -> list[int]:
    """``follow_best`` on a tree graph, over children with ``min_visits`` visits or more;
    a committed spine keeps only the nodes the graph holds."""
    spine = [n for n in graph.graph.get("spine") or () if n in graph]
    if graph.graph.get("spine") and not spine:
        return []
    roots = [n for n in graph.nodes if graph.in_degree(n) == 0]
    return follow_best(min(roots) if roots else None,
                       lambda n: [(rank(graph, c), c) for c in visited_children(graph, n, min_visits)],
                       spine)


def visit_entropy(graph: nx.DiGraph, parents: list[int] | None = None
                  ) -> dict[int, list[float]]:
    """Per depth, each parent's normalised entropy of its children's visits: 1 when the
    visits are spread evenly over all children, 0 when all went to one. It says how broad
    the search was at that depth (parents with two or more children and some visits; all
    of them, or those in ``parents``)."""
    by_depth: dict[int, list[float]] = {}
    for parent in sorted(graph.nodes) if parents is None else parents:
        visits = [int(graph.nodes[c].get("visits") or 0) for c in graph.successors(parent)]
        entropy = normalised_entropy(visits)
        if entropy is not None:
            depth = int(graph.nodes[parent].get("depth") or 0)
            by_depth.setdefault(depth, []).append(entropy)
    return by_depth


def commit_entropy(graph: nx.DiGraph) -> dict[int, list[float]]:
    """``visit_entropy`` of the committed decisions of a step-by-step tree, from their
    children's visits when each was committed (empty for a plain tree)."""
    by_depth: dict[int, list[float]] = {}
    for parent, visits in zip(graph.graph.get("spine") or [],
                              graph.graph.get("spine_visits") or [], strict=False):
        entropy = normalised_entropy(visits)
        if entropy is not None:
            depth = int(graph.nodes[parent].get("depth") or 0)
            by_depth.setdefault(depth, []).append(entropy)
    return by_depth


def normalised_entropy(visits: list[int]) -> float | None:
    """Entropy of a visit distribution over its log(number of children); None below two
    children or without visits."""
    total = sum(visits)
    if len(visits) < 2 or not total:
        return None
    return -sum(v / total * math.log(v / total) for v in visits if v) / math.log(len(visits))


def load_tree(path: str | Path) -> nx.DiGraph:
    """A tree JSON file as a networkx graph; a file that is not one (binary, edited, another
    program's JSON) is one error naming it."""
    data = read_json(path)
    try:
        graph = nx.node_link_graph(data, edges="links")
    except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as exc:
        raise StepwiseError(f"{path}: not a search tree ({error_line(exc)})") from None
    if 0 not in graph.nodes:
        raise StepwiseError(f"{path}: not a search tree (no root node 0)")
    return graph
