"""The MCTS explorer: select -> expand -> simulate -> backpropagate, as a LangGraph machine.

- select: from the root, the child with the highest UCB1 = Q + C * sqrt(ln N_parent / N)
  (an unvisited child first) while a node is expanded;
- expand: a node visited before gets a child per allowed action (or ``width`` of them,
  sampled), and the first new child is simulated; an unvisited node is simulated as it is;
- simulate: from the node's state, the rollout policy (random, as in the seed, or the
  agent's own ``auto`` decisions) plays to the end of the episode, and the finished
  episode is scored;
- backpropagate: every node on the path gets a visit and a reward: wins = score /
  baseline score (the seed), or, with per-step rewards, its own step's score over the
  baseline's score for that step (the seed's proposed improvement).

Plain MCTS searches from the root with one budget per task, so it spends most of it near the
root. Step by step (``per_step``, AlphaZero's moving root), each decision gets its own budget,
searched from that decision; when it is spent the search commits to the decision's best child
(max Q, then visits, then the earlier child) and searches the next decision from there. The
committed path (the tree's ``spine``) reaches the end of the episode and every decision on it
had all its children visited, so each can give a sibling pair, at a cost linear in the
episode's length. It stays one tree: commits are not logged but recomputed on resume, since
they follow from the backed-up values.

The tree lives in the explorer, outside LangGraph's channels (it would not checkpoint),
and every iteration is appended to an event log (``EventLog``), from which a killed run
is rebuilt. Every random choice is seeded from (seed, task, node path, sample index), so
the same seed gives byte-identical trees whether or not a run was interrupted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepwise.errors import StepwiseError, error_line
from stepwise.llm.cache import sampling_seed
from stepwise.search.environment import Episode, Searchable, export_of, missing, plain_label
from stepwise.search.events import EventLog
from stepwise.search.tree import Node, Tree
from stepwise.seeds import derive_seed

Rollout = Literal["random", "auto"]  # random actions (the LongMT design), or the agent's own
Reward = Literal["document", "page"]  # the finished document's score, or each step's page's
QAggregation = Literal["mean", "max"]  # a node's Q: its mean reward, or its best one


class ExploreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    simulations: int = Field(default=32, ge=1, description="iterations per task")
    c: float = Field(default=1.4, ge=0, description="UCB1 exploration constant")
    width: int | None = Field(default=None, ge=2, description="actions expanded per node "
                              "(sampled); default: every action")
    rollout: Rollout = "random"
    reward: Reward = "document"
    q: QAggregation = "mean"
    early_stop: int | None = Field(default=None, ge=1, description="stop when the best path "
                                   "has not changed for this many iterations")
    parallel: int = Field(default=1, ge=1, description="simulations run at once per task, "
                          "kept apart by virtual loss")
    per_step: int | None = Field(default=None, ge=1, description="step by step: simulations "
                                 "per decision, then commit to the best child (``simulations`` "
                                 "is then unused)")
    seed: int = 0

    @model_validator(mode="after")
    def _one_budget(self) -> ExploreOptions:
        if self.per_step is not None and self.early_stop is not None:
            raise ValueError("early_stop is for plain MCTS; per_step already bounds each "
                             "decision")
        return self

    def dump(self) -> dict[str, Any]:
        """The options as trees and run settings keep them; ``per_step`` only when set, so
        plain MCTS runs keep the bytes they had."""
        data = self.model_dump()
        if self.per_step is None:
            data.pop("per_step")
        return data


class BudgetError(StepwiseError):
    """A per-decision budget below a decision's number of actions: some would go unvisited."""

    def __init__(self, per_step: int, actions: int, where: str) -> None:
        super().__init__(f"--per-step {per_step} is below the {actions} actions of {where}: "
                         f"give at least {actions}")
        self.minimum = actions


def check_budget(env: Episode[Any, Any], options: ExploreOptions,
                 where: str = "a decision") -> None:
    """Refuse, before any search, a per-decision budget below the actions a decision has:
    each action of the first decisions (the initial state's, and a step further) is counted.
    The explorer checks every later decision as it reaches it."""
    if options.per_step is None:
        return
    state = env.initial_state()
    for _ in range(2):  # LongMT's first page has one action; its later pages have them all
        if env.is_terminal(state):
            return
        actions = env.actions(state)
        if options.width is not None:
            actions = actions[:options.width]
        if len(actions) > options.per_step:
            raise BudgetError(options.per_step, len(actions), where)
        state = env.step(state, actions[0])


class LoopState(TypedDict, total=False):
    iteration: int
    leaves: list[int]  # selected this round, one per parallel simulation
    batch: list[dict[str, Any]]  # per simulation: expanded, simulated, score, rewards, tokens


class Explorer:
    """One task's search: the tree, the node states, the event log and the options.

    The environment needs an episode and a reward (``Searchable``); without the export
    methods the tree keeps no prompts, completions or tools (and gives no pairs), and a
    node's label is its action."""

    def __init__(self, env: Searchable[Any, Any], options: ExploreOptions,
                 log: EventLog | None = None, env_name: str = "",
                 on_iteration: Callable[[int], None] | None = None,
                 simulated: bool = False) -> None:
        lacking = missing(env, Searchable)
        if lacking:
            raise TypeError(f"{type(env).__name__} is not searchable: it lacks "
                            f"{', '.join(lacking)} (see stepwise.search.environment)")
        self.env = env
        self.export = export_of(env)
        self.options = options
        self.log = log or EventLog(None)
        self.on_iteration = on_iteration
        self.tree = Tree.new(task=env.task_id, env=env_name, seed=options.seed,
                             options=options.dump(), baseline_score=env.baseline_score(),
                             tools=self.export.tool_schemas() if self.export else None,
                             simulated=simulated)
        self.states: dict[int, Any] = {0: env.initial_state()}
        self.stable = 0
        self.best_path = [0]
        self.decision = 0  # step by step: the node whose decision is being searched
        self.spent = 0  # simulations spent on it so far
        if options.per_step is not None:
            self.tree.attrs["spine"] = [0]
            self.tree.attrs["spine_visits"] = []
        self._graph = None

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

    def ucb(self, parent: Node, child: Node, virtual: dict[int, int]) -> float:
        """UCB1; a simulation in flight counts as a visit that lost (virtual loss)."""
        visits = child.visits + virtual.get(child.id, 0)
        if not visits:
            return math.inf
        parent_visits = parent.visits + virtual.get(parent.id, 0)
        explore = self.options.c * math.sqrt(math.log(parent_visits) / visits)
        return child.wins / visits + explore if self.options.q == "mean" else \
            child.q("max") * child.visits / visits + explore

    def select(self, state: LoopState) -> LoopState:
        """One leaf per parallel simulation, each path held back by virtual loss."""
        if self.options.per_step is not None:
            left = self.options.per_step - self.spent
        else:
            left = self.options.simulations - state.get("iteration", 0)
        size = min(self.options.parallel, left)
        virtual: dict[int, int] = {}
        taken: set[int] = set()  # leaves a simulation of this round already owns
        leaves = []
        for _ in range(size):
            node = self.tree.nodes[self.decision]
            path = [node.id]
            while node.children:
                free = [self.tree.nodes[c] for c in node.children
                        if not self._owned(self.tree.nodes[c], taken)]
                if not free:
                    break
                node = max(free, key=lambda child: (self.ucb(node, child, virtual), -child.id))
                path.append(node.id)
            if self._owned(node, taken):
                break
            taken.add(node.id)
            leaves.append(node.id)
            for node_id in path:
                virtual[node_id] = virtual.get(node_id, 0) + 1
        return {"leaves": leaves}

    def _owned(self, node: Node, taken: set[int]) -> bool:
        """Whether every leaf below ``node`` is already taken this round."""
        if not taken:
            return False
        if not node.children:
            return node.id in taken
        return all(self._owned(self.tree.nodes[c], taken) for c in node.children)

    def expand(self, state: LoopState) -> LoopState:
        batch = []
        for leaf_id in state["leaves"]:
            leaf = self.tree.nodes[leaf_id]
            if (leaf.visits == 0 and leaf.id != 0) or \
                    self.env.is_terminal(self.state_of(leaf.id)):
                batch.append({"simulated": leaf.id, "expanded": None})
                continue
            actions = self.env.actions(self.state_of(leaf.id))
            if self.options.width is not None and len(actions) > self.options.width:
                chosen = sorted(self.rng("expand", leaf.id, 0).sample(range(len(actions)),
                                                                        self.options.width))
                actions = [actions[i] for i in chosen]
            if leaf.id == self.decision and self.options.per_step is not None and \
                    len(actions) > self.options.per_step:
                raise BudgetError(self.options.per_step, len(actions),
                                  f"decision {leaf.depth + 1} of {self.env.task_id}")
            parent_state = self.state_of(leaf.id)
            best_actions = getattr(self.env, "best_actions", None)  # optional: ties kept
            export = self.export
            created = {"parent": leaf.id,
                       "prompt": export.decision_prompt(parent_state) if export else None,
                       "optimal": export.optimal_action(parent_state) if export else None,
                       "best_actions": best_actions(parent_state) if best_actions else None,
                       "children": [self._child_spec(parent_state, action)
                                    for action in actions]}
            self._create(created)
            batch.append({"simulated": leaf.children[0], "expanded": created})
        return {"batch": batch}

    def _child_spec(self, state: Any, action: Any) -> dict[str, Any]:
        """What a new child keeps: its action, label, exported step and, when a model call
        generated that step, the call's tokens (``decision_tokens``, optional in the
        protocol: an environment whose steps are rule-made has none)."""
        export = self.export
        spec = {"action": action,
                "label": export.action_label(action) if export else plain_label(action),
                "completion": export.decision_completion(state, action) if export else None}
        decision_tokens = getattr(self.env, "decision_tokens", None)
        tokens = decision_tokens(state, action) if decision_tokens is not None else None
        if tokens:
            spec["call_tokens"] = tokens
        return spec

    def _create(self, created: dict[str, Any] | None) -> None:
        """Add an expansion's children; it carries prompts, so replaying needs no model."""
        if not created:
            return
        parent = self.tree.nodes[created["parent"]]
        parent.prompt, parent.optimal = created["prompt"], created["optimal"]
        parent.best_actions = created.get("best_actions")
        for spec in created["children"]:
            child = self.tree.add_child(parent.id, spec["action"], spec["label"])
            child.completion = spec["completion"]
            child.call_tokens = spec.get("call_tokens")

    def simulate(self, state: LoopState) -> LoopState:
        batch = state["batch"]
        if len(batch) == 1:
            results = [self._rollout(batch[0]["simulated"])]
        else:
            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                results = list(pool.map(self._rollout, [b["simulated"] for b in batch]))
        return {"batch": [{**item, "score": score, "rewards": rewards,
                           **({"tokens": tokens} if tokens is not None else {})}
                          for item, (score, rewards, tokens) in zip(batch, results, strict=True)]}

    def _rollout(self, node_id: int) -> tuple[float, list[list[Any]], list[list[int]] | None]:
        """Play from a node to the end; the score, each path node's reward and, when the
        environment counts them (``step_tokens``), each path node's step tokens."""
        node = self.tree.nodes[node_id]
        rng = self.rng("rollout", node.id, node.visits)
        path = "/".join(str(n) for n in self.tree.path_to(node.id))
        sample_seed = derive_seed(self.options.seed, self.env.task_id, "sample", path, node.visits)
        with sampling_seed(sample_seed):  # sampled model calls are seeded too
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
        return score, rewards, self._path_tokens(current, path)

    def _path_tokens(self, finished: Any, path: list[int]) -> list[list[int]] | None:
        """``[node, tokens its step used]`` for the path's non-root nodes, from a finished
        episode's ``step_tokens`` (optional in the protocol: None without it)."""
        step_tokens = getattr(self.env, "step_tokens", None)
        if step_tokens is None:
            return None
        used = step_tokens(finished)
        return [[n, used[self.tree.nodes[n].depth - 1]] for n in path
                if self.tree.nodes[n].depth]

    def backpropagate(self, state: LoopState) -> LoopState:
        iteration = state.get("iteration", 0)
        for item in state["batch"]:
            self._apply(item["score"], item["rewards"], item.get("tokens"))
        self.log.append({"i": iteration, "batch": state["batch"]})
        self._spend(len(state["batch"]))
        iteration += len(state["batch"])
        if self.on_iteration is not None:
            for _ in state["batch"]:
                self.on_iteration(iteration)
        return {"iteration": iteration}

    def _apply(self, score: float, rewards: list[list[Any]],
               tokens: list[list[int]] | None = None) -> None:
        """Back a rollout up its path; ``tokens`` (absent from logs written before nodes
        counted them) sets each node's step tokens."""
        for node_id, reward in rewards:
            node = self.tree.nodes[node_id]
            node.visits += 1
            node.wins += reward
            node.best = max(node.best, reward)
            node.score_sum += score
            if self.options.reward == "page" and node.depth:
                node.step_score = reward
        for node_id, used in tokens or ():
            self.tree.nodes[node_id].tokens = used
        path = self.tree.best_path()
        self.stable = self.stable + 1 if path == self.best_path else 0
        self.best_path = path

    # -- step by step -----------------------------------------------------------------

    def _spend(self, simulations: int) -> None:
        """Count a round against the decision's budget; commit when it is spent (or when the
        decision's only action has been tried: a second simulation would tell nothing)."""
        if self.options.per_step is None:
            return
        self.spent += simulations
        node = self.tree.nodes[self.decision]
        only = len(node.children) == 1 and self.tree.nodes[node.children[0]].visits
        if self.spent >= self.options.per_step or only:
            self._commit()

    def _commit(self) -> None:
        """Move the decision to its best child (max Q, then visits, then the earlier one)."""
        best = self.tree.best_child(self.decision)
        if best is None:  # nothing visited below: only a terminal decision has no child
            return
        self.tree.attrs["spine_visits"].append(
            [self.tree.nodes[c].visits for c in self.tree.nodes[self.decision].children])
        self.decision, self.spent = best.id, 0
        self.tree.attrs["spine"].append(best.id)

    def finished(self) -> bool:
        """Step by step: whether the committed path has reached the end of the episode."""
        return self.env.is_terminal(self.state_of(self.decision))

    def should_stop(self, state: LoopState) -> str:
        if self.options.per_step is not None:  # one graph run per decision
            return END if self.spent == 0 else "select"
        if state["iteration"] >= self.options.simulations:
            return END
        if self.options.early_stop and self.stable >= self.options.early_stop:
            return END
        return "select"

    # -- running and resuming -----------------------------------------------------------

    def replay(self, events: list[dict[str, Any]]) -> int:
        """Rebuild the tree from logged iterations; the number of iterations replayed.

        Each iteration is applied at most once, keyed by the index it was logged at: a log
        that two explores appended to holds some iterations twice, and applying them again
        would double their visits and children.
        """
        done = 0
        for number, event in enumerate(events, 1):  # one event per line of the log
            try:
                if event.get("i", done) < done:  # logged before, by another writer
                    continue
                for item in event["batch"]:
                    self._create(item["expanded"])
                for item in event["batch"]:
                    self._apply(item["score"], item["rewards"], item.get("tokens"))
                self._spend(len(event["batch"]))
                done += len(event["batch"])
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                where = self.log.path or "the event log"
                raise StepwiseError(f"{where}:{number}: not an iteration of this search "
                                    f"({error_line(exc)}); delete the file to search "
                                    f"{self.env.task_id} again") from None
        return done

    def graph(self):
        if self._graph is not None:
            return self._graph
        graph = StateGraph(LoopState)
        for name in ("select", "expand", "simulate", "backpropagate"):
            graph.add_node(name, getattr(self, name))
        graph.add_edge(START, "select")
        graph.add_edge("select", "expand")
        graph.add_edge("expand", "simulate")
        graph.add_edge("simulate", "backpropagate")
        graph.add_conditional_edges("backpropagate", self.should_stop)
        self._graph = graph.compile()
        return self._graph

    def run(self) -> Tree:
        """Explore until the budget or the early stop (step by step: until the committed
        path ends the episode); resumes from the event log."""
        done = self.replay(self.log.read())
        if self.options.per_step is not None:
            while not self.finished():
                done = self.graph().invoke({"iteration": done}, {
                    "recursion_limit": 4 * self.options.per_step + 10})["iteration"]
            return self.tree
        if done < self.options.simulations and not (
                self.options.early_stop and self.stable >= self.options.early_stop):
            left = self.options.simulations - done
            self.graph().invoke({"iteration": done}, {"recursion_limit": 4 * left + 10})
        return self.tree
