"""The one protocol between the explorer and an agent: an environment.

Search code knows no agent and agents know no search; adding an explorable agent is one
class with these methods. A state is whatever the agent steps on (plain data that forks
for free, as LongMT's immutable memory does); an action is a JSON value (LongMT: the
list of memory modules a page calls). Scores are "higher is better".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Action = Any  # a JSON value: list of module names, a tool name, ...


@runtime_checkable
class Environment(Protocol):
    task_id: str

    def initial_state(self) -> Any:
        """The state before the first decision."""

    def actions(self, state: Any) -> list[Action]:
        """The actions allowed at ``state``, in a fixed order."""

    def step(self, state: Any, action: Action) -> Any:
        """The state after taking ``action`` (runs the agent's step, model calls included)."""

    def is_terminal(self, state: Any) -> bool: ...

    def score(self, state: Any) -> float:
        """The finished episode's score (LongMT: document BLEU against the reference)."""

    def step_scores(self, state: Any) -> list[float]:
        """Each step's own score in a finished episode, for per-step rewards."""

    def baseline_score(self) -> float:
        """What a score is divided by to make wins (the seed: the ``none`` policy's score)."""

    def baseline_step_scores(self) -> list[float]:
        """The baseline's score for each step, for per-step rewards."""

    def rollout_action(self, state: Any, rng: random.Random) -> Action:
        """The simulation policy's choice (random by default)."""

    def decision_prompt(self, state: Any) -> list[dict]:
        """The chat messages a model sees when it takes the decision at ``state``."""

    def decision_completion(self, state: Any, action: Action) -> list[dict]:
        """The assistant step that takes ``action`` at ``state`` (tool calls included)."""

    def tool_schemas(self) -> list[dict]:
        """The tools a decision may call, as OpenAI tool schemas."""

    def optimal_action(self, state: Any) -> Action | None:
        """The best action when the environment knows it (a simulated world), else None."""

    def action_label(self, action: Action) -> str:
        """A short human-readable name for an action."""


def uniform_choice(actions: Sequence[Action], rng: random.Random) -> Action:
    return actions[rng.randrange(len(actions))]
