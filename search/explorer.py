"""The MCTS explorer: select -> expand -> simulate -> backpropagate, as a LangGraph machine.

- select: from the root, the child with the highest UCB1 = Q + C * sqrt(ln N_parent / N)
  (an unvisited child first) while a node is expanded;
- expand: a node visited before gets a child per allowed action (or ``width`` of them,
  sampled), and the first new child is simulated; an unvisited node is simulated as it is;
- simulate: from the node's state, the rollout policy (random, as in the seed, or the
  agent's own ``auto`` decisions) plays to the end of the episode, and the finished
  episode is scored;
- backpropagate: every node on the path gets a visit and a reward: wins = score /
  baseline score (the seed), or, with per-step rewards, its own step's reward-to-go over
  the baseline's.

The tree lives in the explorer, outside LangGraph's channels (it would not checkpoint),
and every iteration is appended to an event log (``EventLog``), from which a killed run
is rebuilt. Every random choice is seeded from (seed, task, node path, sample index), so
the same seed gives byte-identical trees whether or not a run was interrupted.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field

from stepwise.search.events import EventLog
from stepwise.search.tree import Node, Tree


class ExploreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    simulations: int = Field(default=32, ge=1, description="iterations per task")
    c: float = Field(default=1.4, ge=0, description="UCB1 exploration constant")
    width: int | None = Field(default=None, ge=2, description="actions expanded per node "
                              "(sampled); default: every action")
    rollout: Literal["random", "auto"] = "random"
    reward: Literal["document", "page"] = "document"
    q: Literal["mean", "max"] = "mean"
    early_stop: int | None = Field(default=None, ge=1, description="stop when the best path "
                                   "has not changed for this many iterations")
    seed: int = 0


def derive_seed(*parts: Any) -> int:
    """A seed from any parts, the same in every process (never Python's salted hash)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


class LoopState(TypedDict, total=False):
    iteration: int
    leaf: int
    simulated: int
    expanded: dict[str, Any] | None
    score: float
    rewards: list[list[Any]]
    stable: int
    best_path: list[int]


class Explorer:
    """One task's search: the tree, the node states, the event log and the options."""

    def __init__(self, env: Any, options: ExploreOptions, log: EventLog | None = None,
                 env_name: str = "", on_iteration: Callable[[int], None] | None = None,
                 simulated: bool = False) -> None:
        self.env = env
        self.options = options
        self.log = log or EventLog(None)
        self.on_iteration = on_iteration
        self.tree = Tree.new(task=env.task_id, env=env_name, seed=options.seed,
                             options=options.model_dump(), baseline_score=env.baseline_score(),
                             tools=env.tool_schemas(), simulated=simulated)
        self.states: dict[int, Any] = {0: env.initial_state()}
        self.stable = 0
        self.best_path = [0]

    # -- states and randomness --------------------------------------------------------

    def state_of(self, node_id: int) -> Any:
        """A node's state, stepped from its parent's (memoised: rollouts share prefixes)."""
        if node_id not in self.states:
            node = self.tree.nodes[node_id]
            self.states[node_id] = self.env.step(self.state_of(node.parent), node.action)
        return self.states[node_id]

    def rng(self, purpose: str, node_id: int, sample: int) -> random.Random:
        path = "/".join(str(n) for n in self.tree.path_to(node_id))
        return random.Random(derive_seed(self.options.seed, self.env.task_id, purpose, path,
                                         sample))

    # -- the four steps -----------------------------------------------------------------

    def ucb(self, parent: Node, child: Node) -> float:
        if not child.visits:
            return math.inf
        explore = self.options.c * math.sqrt(math.log(parent.visits) / child.visits)
        return child.q(self.options.q) + explore

    def select(self, state: LoopState) -> LoopState:
        node = self.tree.root
        while node.children:
            node = max((self.tree.nodes[c] for c in node.children),
                       key=lambda child: (self.ucb(node, child), -child.id))
        return {"leaf": node.id}

    def expand(self, state: LoopState) -> LoopState:
        leaf = self.tree.nodes[state["leaf"]]
        if (leaf.visits == 0 and leaf.id != 0) or self.env.is_terminal(self.state_of(leaf.id)):
            return {"simulated": leaf.id, "expanded": None}
        actions = self.env.actions(self.state_of(leaf.id))
        if self.options.width is not None and len(actions) > self.options.width:
            chosen = sorted(self.rng("expand", leaf.id, 0).sample(range(len(actions)),
                                                                    self.options.width))
            actions = [actions[i] for i in chosen]
        parent_state = self.state_of(leaf.id)
        created = {"parent": leaf.id, "prompt": self.env.decision_prompt(parent_state),
                   "optimal": self.env.optimal_action(parent_state),
                   "children": [{"action": action, "label": self.env.action_label(action),
                                 "completion": self.env.decision_completion(parent_state, action)}
                                for action in actions]}
        self._create(created)
        return {"simulated": leaf.children[0], "expanded": created}

    def _create(self, created: dict[str, Any] | None) -> None:
        """Add an expansion's children; it carries prompts, so replaying needs no model."""
        if not created:
            return
        parent = self.tree.nodes[created["parent"]]
        parent.prompt, parent.optimal = created["prompt"], created["optimal"]
        for spec in created["children"]:
            child = self.tree.add_child(parent.id, spec["action"], spec["label"])
            child.completion = spec["completion"]

    def simulate(self, state: LoopState) -> LoopState:
        node = self.tree.nodes[state["simulated"]]
        rng = self.rng("rollout", node.id, node.visits)
        current = self.state_of(node.id)
        while not self.env.is_terminal(current):
            current = self.env.step(current, self.env.rollout_action(current, rng))
        score = self.env.score(current)
        baseline = self.env.baseline_score() or 1.0
        path = self.tree.path_to(node.id)
        if self.options.reward == "page":
            to_go, base = self.env.step_scores(current), self.env.baseline_step_scores()
            rewards = [[n, (to_go[self.tree.nodes[n].depth - 1] /
                            (base[self.tree.nodes[n].depth - 1] or 1.0))
                        if self.tree.nodes[n].depth else score / baseline] for n in path]
        else:
            rewards = [[n, score / baseline] for n in path]
        return {"score": score, "rewards": rewards}

    def backpropagate(self, state: LoopState) -> LoopState:
        self._apply(state["score"], state["rewards"])
        iteration = state.get("iteration", 0)
        self.log.append({"i": iteration, "expanded": state["expanded"],
                         "simulated": state["simulated"], "score": state["score"],
                         "rewards": state["rewards"]})
        if self.on_iteration is not None:
            self.on_iteration(iteration + 1)
        return {"iteration": iteration + 1}

    def _apply(self, score: float, rewards: list[list[Any]]) -> None:
        for node_id, reward in rewards:
            node = self.tree.nodes[node_id]
            node.visits += 1
            node.wins += reward
            node.best = max(node.best, reward)
            node.score_sum += score
            if self.options.reward == "page" and node.depth:
                node.step_score = reward
        path = self.tree.best_path()
        self.stable = self.stable + 1 if path == self.best_path else 0
        self.best_path = path

    def should_stop(self, state: LoopState) -> str:
        if state["iteration"] >= self.options.simulations:
            return END
        if self.options.early_stop and self.stable >= self.options.early_stop:
            return END
        return "select"

    # -- running and resuming -----------------------------------------------------------

    def replay(self, events: list[dict[str, Any]]) -> int:
        """Rebuild the tree from logged iterations; the number of iterations replayed."""
        for event in events:
            self._create(event["expanded"])
            self._apply(event["score"], event["rewards"])
        return len(events)

    def graph(self):
        graph = StateGraph(LoopState)
        for name in ("select", "expand", "simulate", "backpropagate"):
            graph.add_node(name, getattr(self, name))
        graph.add_edge(START, "select")
        graph.add_edge("select", "expand")
        graph.add_edge("expand", "simulate")
        graph.add_edge("simulate", "backpropagate")
        graph.add_conditional_edges("backpropagate", self.should_stop)
        return graph.compile()

    def run(self) -> Tree:
        """Explore until the budget or the early stop; resumes from the event log."""
        done = self.replay(self.log.read())
        if done < self.options.simulations and not (
                self.options.early_stop and self.stable >= self.options.early_stop):
            left = self.options.simulations - done
            self.graph().invoke({"iteration": done},
                                {"recursion_limit": 4 * left + 10})
        return self.tree
