"""The MCTS explorer: select -> expand -> simulate -> backpropagate, simulations in flight.

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

Simulations run asynchronously, ``parallel`` at once: there are no rounds, and a slot whose
rollout ends takes the next selected simulation at once. Simulations are numbered in the
order they are selected; a selection and its expansion happen under a lock, and virtual loss
(a simulation in flight counts as a visit that lost, along its whole path) keeps the
in-flight paths apart. A simulation starts from a leaf no other in flight starts from while
there is one; when every leaf is in flight (a small tree: the first simulations, or a
decision's first step by step) it expands one of them, by UCB1 with the virtual losses,
without waiting for its first rollout to back up, and plays that leaf's first child instead
of leaving its slot idle (waiting, the first tenth of a search at 16 slots had kept a third
of them busy). Playing a second rollout from the leaf kept slots as busy, but spent a small
budget above the decisions: SmolLM2 with 4 simulations, 2 at once, replayed a forced first
page in 3 of 4 rollouts, where the sequential search tried three actions after it.
Determinism is kept by **seeding by path and sample index, with selection at fixed points**,
not by logging completion order: every random choice is seeded from (seed, task, node path,
the node's visits and simulations in flight from it when selected), so a rollout gives the
same result whenever and on whichever thread it runs; backups are applied in simulation
order (a result that comes back early waits for the earlier ones), and after each backup the
simulations that it allows are selected at once, up to ``parallel + parallel // 2`` selected and
not yet backed up (``parallel`` running, the rest queued for the next free slot). So which
simulations see which backups is fixed by their numbers alone, and the tree is the same in
any completion order: one ``parallel`` gives byte-identical trees run after run, threaded or
inline, interrupted and resumed or not, and ``parallel=1`` is the sequential search (its
trees and logs are those the round-based search wrote). The window is what keeps slots busy:
with only ``parallel``, a rollout longer than its neighbours holds back every later
selection, as a round did. A wider one lets selections see older values, so the search
spreads and a simulation makes more model calls: at 16 slots with a 20 ms model, windows of
16, 24 and 31 kept 77%, 90% and 93% of the slots busy but took 5.2, 4.9 and 5.7 s for the
same simulations (measured before a leaf in flight could be expanded). Step by step, each
decision's simulations all back up before it commits (the commit needs their values).

Tasks searched side by side (``explore_tasks`` with several workers) share their slots:
workers × ``parallel`` rollouts run at once in all, and each task runs its window's
simulations on as many threads, so a task whose neighbours are finishing, or waiting on a
backup, runs more than ``parallel`` at once. Only the threads differ, not the schedule:
each task's tree is the one it gets alone.

The tree lives in the explorer and every backup is appended to an event log (``EventLog``),
from which a killed run is rebuilt: a replay runs the same schedule, taking the logged
results (and the expansions' prompts, so it needs no model) instead of rollouts, and the
simulations in flight at the kill run again. The loop is plain Python rather than a
LangGraph machine: the tree could never live in its channels (it would not checkpoint),
so its four super-steps per simulation only cost time (profiled with a zero-latency
model, more than the model calls and the rest of the search together); the agents the
explorer drives stay LangGraph graphs.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stepwise.errors import StepwiseError, error_line
from stepwise.llm.cache import sampling_seed
from stepwise.search.environment import Searchable, export_of, missing, plain_label
from stepwise.search.events import EventLog
from stepwise.search.options import (
    BudgetError,
    ExploreOptions,
    HorizonError,
    QAggregation,
    Reward,
    Rollout,
    check_budget,
)
from stepwise.search.tree import Node, Tree
from stepwise.seeds import derive_seed

__all__ = ["BudgetError", "ExploreOptions", "Explorer", "HorizonError", "QAggregation", "Reward",
           "Rollout", "Simulation", "check_budget"]

@dataclass
class Simulation:
    """One simulation from its selection to its backup."""

    index: int  # its number: the order of selection and of backup
    node: int  # the node its rollout starts from
    path: list[int]  # the root to ``node``: the nodes it backs up
    sample: int  # the rollout's sample index: ``node``'s visits and simulations in flight
    expanded: dict[str, Any] | None  # the expansion its selection made, logged with it
    holds: bool = True  # the first in flight from its leaf, while that is a leaf
    result: dict[str, Any] | None = None  # score, rewards and tokens, once its rollout ends


class Explorer:
    """One task's search: the tree, the node states, the event log and the options.

    The environment needs an episode and a reward (``Searchable``); without the export
    methods the tree keeps no prompts, completions or tools (and gives no pairs), and a
    node's label is its action."""

    def __init__(self, env: Searchable[Any, Any], options: ExploreOptions,
                 log: EventLog | None = None, env_name: str = "",
                 on_iteration: Callable[[int], None] | None = None,
                 simulated: bool = False,
                 slots: threading.Semaphore | None = None) -> None:
        lacking = missing(env, Searchable)
        if lacking:
            raise TypeError(f"{type(env).__name__} is not searchable: it lacks "
                            f"{', '.join(lacking)} (see stepwise.search.environment)")
        if options.horizon is not None and not getattr(env, "scores_partial_episodes", False):
            raise HorizonError(f"{type(env).__name__} scores a step only once its episode is "
                               "finished: a rollout horizon would cut every reward off; search "
                               "it without one")
        self.env = env
        self.export = export_of(env)
        self.options = options
        self.log = log or EventLog(None)
        self.on_iteration = on_iteration
        self.slots = slots  # rollouts running at once, shared with other tasks' searches
        self.tree = Tree.new(task=env.task_id, env=env_name, seed=options.seed,
                             options=options.dump(), baseline_score=env.baseline_score(),
                             tools=self.export.tool_schemas() if self.export else None,
                             simulated=simulated)
        self.states: dict[int, Any] = {0: env.initial_state()}
        self._stepping: dict[int, threading.Lock] = {}  # per node: held while it is stepped
        self._stepping_lock = threading.Lock()
        self.stable = 0
        self.best_path = [0]
        self.decision = 0  # step by step: the node whose decision is being searched
        self.spent = 0  # simulations backed up for it so far
        if options.per_step is not None:
            self.tree.attrs["spine"] = [0]
            self.tree.attrs["spine_visits"] = []
        # the schedule: simulations selected and not yet backed up, in selection order
        self.selected = 0  # simulations selected so far (the next one's index)
        self.backed_up = 0  # simulations backed up so far
        self._flight: dict[int, Simulation] = {}
        self._queue: deque[Simulation] = deque()  # selected, waiting for a free slot
        self._window = options.parallel + options.parallel // 2
        self._virtual: dict[int, int] = {}  # per node: simulations in flight through it
        self._free: dict[int, int] = {0: 1}  # per node: leaves below with no simulation
        self._launched = 0  # step by step: simulations selected for the decision
        self._closing = False  # step by step: the decision commits once they are back
        self._logged: dict[int, dict[str, Any]] = {}  # a replay's results, by index
        self._lines: dict[int, int] = {}  # a replay's log line of each
        self._lock = threading.Condition()
        self._halted = False

    # -- states and randomness --------------------------------------------------------

    def state_of(self, node_id: int) -> Any:
        """A node's state, stepped from its parent's (memoised: rollouts share prefixes).
        Stepped once: rollouts in flight from one node wait for the first to step it, so a
        step's model calls do not depend on timing."""
        if node_id in self.states:
            return self.states[node_id]
        with self._stepping_lock:  # not the schedule's lock: a selection may step a node
            stepping = self._stepping.setdefault(node_id, threading.Lock())
        with stepping:
            if node_id not in self.states:
                node = self.tree.nodes[node_id]
                self.states[node_id] = self.env.step(self.state_of(node.parent), node.action)
        return self.states[node_id]

    def rng(self, purpose: str, node_id: int, sample: int) -> random.Random:
        path = "/".join(str(n) for n in self.tree.path_to(node_id))
        return random.Random(derive_seed(self.options.seed, self.env.task_id, purpose, path,
                                         sample))

    # -- select and expand --------------------------------------------------------------

    def _walk(self) -> tuple[int, bool]:
        """From the decision down by UCB1 to a leaf, and whether the simulation holds it: a
        leaf no simulation in flight starts from while there is one below the decision;
        otherwise (every leaf below is in flight: a small tree, early on) a leaf in flight,
        for the selection to expand. A simulation in flight counts as a visit that lost
        along its path (virtual loss); ties go to the earlier child."""
        nodes, free, virtual = self.tree.nodes, self._free, self._virtual
        node = nodes[self.decision]
        holds = free[node.id] > 0
        c, mean = self.options.c, self.options.q == "mean"
        while node.children:
            log_parent = None
            best, best_ucb = None, -math.inf
            for child_id in node.children:
                if holds and not free[child_id]:
                    continue
                child = nodes[child_id]
                visits = child.visits + virtual.get(child_id, 0)
                if not visits:
                    best = child
                    break  # an unvisited child first (inf): the earliest such
                if log_parent is None:
                    log_parent = math.log(node.visits + virtual.get(node.id, 0))
                explore = c * math.sqrt(log_parent / visits)
                ucb = child.wins / visits + explore if mean else \
                    child.q("max") * child.visits / visits + explore
                if ucb > best_ucb:
                    best, best_ucb = child, ucb
            assert best is not None  # a node with free leaves below has a free child
            node = best
        return node.id, holds

    def _select(self) -> Simulation:
        """Select the next simulation: walk to a leaf, expand it (on a replay, as the log
        says, with no model call) and hold its path. A leaf in flight (its first rollout is
        out) is expanded only when every leaf is: its state is stepped once, by whichever
        comes first, so a selection may wait for that rollout's first step. A terminal leaf
        is never expanded: when every leaf is in flight, one is scored again."""
        leaf_id, holds = self._walk()
        index, leaf = self.selected, self.tree.nodes[leaf_id]
        logged = self._logged.get(index)
        if logged is not None:
            with self._reading(index):
                created = logged["expanded"]
                at = created["parent"] if created is not None else logged["simulated"]
                if at != leaf_id:
                    raise ValueError(f"simulation {index} was logged at node {at}; this "
                                     f"search selects node {leaf_id}")
                self._create(created)
        elif (holds and leaf.visits == 0 and leaf.id != 0) or \
                self.env.is_terminal(self.state_of(leaf_id)):
            created = None
        else:  # a visited leaf, or one in flight while every leaf is: expanded now
            created = self._expansion(leaf)
            self._create(created)
        if created is not None:
            holds = True  # its first child is a free leaf
        node_id = leaf.children[0] if created is not None else leaf_id
        path = self.tree.path_to(node_id)
        # the rollout's sample index: the node's visits and the simulations in flight from it
        # (a leaf's in flight through it), so rollouts from one node never share a seed
        sample = self.tree.nodes[node_id].visits + self._virtual.get(node_id, 0)
        for n in path:
            self._virtual[n] = self._virtual.get(n, 0) + 1
            if holds:
                self._free[n] -= 1
        simulation = Simulation(index, node_id, path, sample, created, holds)
        self.selected += 1
        self._launched += 1
        self._flight[index] = simulation
        return simulation

    def _expansion(self, leaf: Node) -> dict[str, Any]:
        """A visited leaf's children: its allowed actions (``width`` of them, sampled), with
        the decision's prompt and each child's exported step."""
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
        return {"parent": leaf.id,
                "prompt": export.decision_prompt(parent_state) if export else None,
                "optimal": export.optimal_action(parent_state) if export else None,
                "best_actions": best_actions(parent_state) if best_actions else None,
                "children": [self._child_spec(parent_state, action) for action in actions]}
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
            self._free[child.id] = 1
        # the parent was a leaf; its children are. Held by a simulation in flight (expanded
        # while every leaf was), it no longer is: that simulation holds no leaf
        held = not self._free[parent.id]
        if held:
            holder = next(sim for sim in self._flight.values()
                          if sim.holds and sim.node == parent.id)
            holder.holds = False
        leaves = len(created["children"]) - (0 if held else 1)
        for n in self.tree.path_to(parent.id):
            self._free[n] += leaves

    # -- simulate and backpropagate -------------------------------------------------------

    def _rollout(self, simulation: Simulation) -> dict[str, Any]:
        """Play from the simulation's node to the end (or ``horizon`` steps past it): the
        score, each path node's reward and, when the environment counts them
        (``step_tokens``), each path node's step tokens. It reads nothing of the tree that a
        backup changes, so it runs unlocked.

        With a horizon the episode may stop unfinished: the path nodes' page rewards are
        whole (each depends on its own step and those before it), and the score is that of
        what was played (LongMT: BLEU over the lines finished so far)."""
        path, sample = simulation.path, simulation.sample
        key = "/".join(str(n) for n in path)
        seed, task = self.options.seed, self.env.task_id
        rng = random.Random(derive_seed(seed, task, "rollout", key, sample))
        horizon = self.options.horizon
        with sampling_seed(derive_seed(seed, task, "sample", key, sample)):  # sampled calls too
            current, played = self.state_of(simulation.node), 0
            while not self.env.is_terminal(current) and (horizon is None or played < horizon):
                current = self.env.step(current, self.env.rollout_action(current, rng))
                played += 1
        score = self.env.score(current)
        baseline = self.env.baseline_score() or 1.0
        if self.options.reward == "page":  # a path node's depth is its place on the path
            to_go, base = self.env.step_scores(current), self.env.baseline_step_scores()
            rewards = [[n, to_go[depth - 1] / (base[depth - 1] or 1.0) if depth
                        else score / baseline] for depth, n in enumerate(path)]
        else:
            rewards = [[n, score / baseline] for n in path]
        result: dict[str, Any] = {"score": score, "rewards": rewards}
        step_tokens = getattr(self.env, "step_tokens", None)  # optional in the protocol
        if step_tokens is not None:
            used = step_tokens(current)
            result["tokens"] = [[n, used[depth - 1]] for depth, n in enumerate(path) if depth]
        return result

    def _back_up(self, simulation: Simulation, live: bool) -> None:
        """Release a finished simulation's path and back its result up; a live one is logged
        and counted (a replayed one was, when it ran)."""
        result = simulation.result
        assert result is not None
        del self._flight[simulation.index]
        for n in simulation.path:
            self._virtual[n] -= 1
            if simulation.holds:
                self._free[n] += 1
        if live:
            self._apply(result["score"], result["rewards"], result.get("tokens"))
        else:
            with self._reading(simulation.index):
                self._apply(result["score"], result["rewards"], result.get("tokens"))
        self.backed_up += 1
        if live:
            item = {"simulated": simulation.node, "expanded": simulation.expanded, **result}
            self.log.append({"i": simulation.index, "batch": [item]})
        self._spend()
        if live and self.on_iteration is not None:
            self.on_iteration(self.backed_up)

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
        if self.options.early_stop:  # the best path is walked only for the early stop
            path = self.tree.best_path()
            self.stable = self.stable + 1 if path == self.best_path else 0
            self.best_path = path

    # -- step by step -----------------------------------------------------------------

    def _spend(self, simulations: int = 1) -> None:
        """Count backups against the decision's budget; once it is spent (or the decision's
        only action has been tried: a second simulation would tell nothing), no more are
        selected for it, and it commits when those in flight are back."""
        if self.options.per_step is None:
            return
        self.spent += simulations
        node = self.tree.nodes[self.decision]
        only = len(node.children) == 1 and self.tree.nodes[node.children[0]].visits
        if self.spent >= self.options.per_step or only:
            self._closing = True
        if self._closing and not self._flight:
            self._commit()

    def _commit(self) -> None:
        """Move the decision to its best child (max Q, then visits, then the earlier one)."""
        best = self.tree.best_child(self.decision)
        if best is None:  # nothing visited below: only a terminal decision has no child
            return
        self.tree.attrs["spine_visits"].append(
            [self.tree.nodes[c].visits for c in self.tree.nodes[self.decision].children])
        self.decision, self.spent = best.id, 0
        self._launched, self._closing = 0, False
        self.tree.attrs["spine"].append(best.id)

    def finished(self) -> bool:
        """Step by step: whether the committed path has reached the end of the episode."""
        return self.env.is_terminal(self.state_of(self.decision))

    # -- the schedule -------------------------------------------------------------------

    def _may_select(self) -> bool:
        """Whether the budget (the decision's, step by step) allows another simulation."""
        if self._halted:
            return False
        options = self.options
        if options.per_step is not None:
            return not self._closing and self._launched < options.per_step and \
                not self.finished()
        if options.early_stop and self.stable >= options.early_stop:
            return False
        return self.selected < options.simulations

    def _fill(self) -> None:
        """Select every simulation the window and the budget allow now."""
        while len(self._flight) < self._window and self._may_select():
            self._queue.append(self._select())

    def _back_up_finished(self) -> None:
        """Back up every finished simulation whose predecessors are back, in order, each
        followed by the selections it allows (so the schedule is the same in any order)."""
        while not self._halted:
            head = self._flight.get(self.backed_up)
            if head is None or head.result is None:
                return
            self._back_up(head, live=True)
            self._fill()

    def _work(self, slot: int = 0) -> None:
        """One slot: take the next selected simulation, play it, hand its result back, until
        the search ends (nothing in flight) or is halted."""
        lock = self._lock
        try:
            while True:
                with lock:
                    while not self._queue and self._flight and not self._halted:
                        lock.wait()
                    if self._halted or not self._queue:
                        return
                    simulation = self._queue.popleft()
                if self.slots is None:
                    result = self._rollout(simulation)
                else:
                    with self.slots:
                        result = self._rollout(simulation)
                with lock:
                    simulation.result = result
                    self._back_up_finished()
                    if not self._flight:
                        lock.notify_all()  # the search is over: every slot ends
                    elif len(self._queue) > 1:
                        lock.notify(len(self._queue) - 1)  # this slot takes one itself
        except BaseException:
            self._halt()  # the other slots stop after their rollout; nothing more is logged
            raise

    def _halt(self) -> None:
        with self._lock:
            self._halted = True
            self._lock.notify_all()

    def _search(self) -> None:
        """Run the selected simulations on ``parallel`` slots (one: on this thread). With
        ``slots`` shared between tasks, on as many threads as the window holds simulations:
        the shared slots bound the rollouts running, and a task whose neighbours have
        finished, or are between simulations, runs more than ``parallel`` of them at once.
        Only the threads differ: the schedule, and so the tree, is the same."""
        if not self._flight:
            return
        slots = self._window if self.slots is not None else self.options.parallel
        if slots == 1:
            self._work()
            return
        with ThreadPoolExecutor(max_workers=slots) as pool:
            try:
                for _ in pool.map(self._work, range(slots)):
                    pass
            finally:
                self._halt()  # Ctrl-C here: the slots end after their rollouts

    # -- running and resuming -----------------------------------------------------------

    def replay(self, events: list[dict[str, Any]]) -> int:
        """Rebuild the search from its logged backups; the number replayed.

        The schedule runs again with each logged result in place of its rollout, so the
        simulations that were in flight when the log ended are selected as they were, and
        left to run. Each backup is applied at most once, keyed by the index it was logged
        at: a log that two explores appended to holds some twice. A log of the round-based
        search (rounds of several simulations on one line) is replayed round by round.
        """
        kept: list[tuple[int, list[dict[str, Any]]]] = []  # (line number, its simulations)
        done = 0
        for number, event in enumerate(events, 1):  # one event per line of the log
            with self._bad_line(number):
                if event.get("i", done) < done:  # logged before, by another writer
                    continue
                batch = event["batch"]
                if not isinstance(batch, list) or not batch:
                    raise ValueError("no simulations in its batch")
                kept.append((number, batch))
                done += len(batch)
        if any(len(batch) > 1 for _, batch in kept):
            return self._replay_rounds(kept)
        logged = {index: batch[0] for index, (_, batch) in enumerate(kept)}
        lines = {index: number for index, (number, _) in enumerate(kept)}
        self._logged, self._lines = logged, lines
        try:
            self._fill()
            while self._queue and self._queue[0].index in logged:
                simulation = self._queue.popleft()
                simulation.result = logged[simulation.index]
                self._back_up(simulation, live=False)
                self._fill()
        finally:
            self._logged = {}
        return self.backed_up

    def _replay_rounds(self, rounds: list[tuple[int, list[dict[str, Any]]]]) -> int:
        """Replay a log the round-based search wrote: each line one round, created then
        backed up; the search goes on from there."""
        for number, batch in rounds:
            with self._bad_line(number):
                for item in batch:
                    self._create(item["expanded"])
                for item in batch:
                    self._apply(item["score"], item["rewards"], item.get("tokens"))
                self._spend(len(batch))
                self.backed_up += len(batch)
        self.selected = self.backed_up
        self._fill()
        return self.backed_up

    @contextmanager
    def _reading(self, index: int) -> Iterator[None]:
        """Errors in a logged simulation name its line."""
        with self._bad_line(self._lines.get(index, index + 1)):
            yield

    @contextmanager
    def _bad_line(self, number: int) -> Iterator[None]:
        """A logged line this search cannot have written is one error naming the line."""
        try:
            yield
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            where = self.log.path or "the event log"
            raise StepwiseError(f"{where}:{number}: not an iteration of this search "
                                f"({error_line(exc)}); delete the file to search "
                                f"{self.env.task_id} again") from None

    def run(self) -> Tree:
        """Explore until the budget or the early stop (step by step: until the committed
        path ends the episode); resumes from the event log."""
        try:
            self.replay(self.log.read())
            self._search()
        finally:
            self.log.close()
        return self.tree
