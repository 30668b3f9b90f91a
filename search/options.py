"""What a search is asked to do: its budget, rollout, reward and schedule options, and the
checks that refuse a budget or horizon before any search runs (``ExploreOptions`` is what
trees and run settings keep)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepwise.errors import StepwiseError
from stepwise.search.environment import Episode

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
    horizon: int | None = Field(default=None, ge=0, description="page rewards: a rollout "
                                "plays at most this many steps past its node and is scored on "
                                "what was played (default: to the end)")
    seed: int = 0

    @model_validator(mode="after")
    def _one_budget(self) -> ExploreOptions:
        if self.per_step is not None and self.early_stop is not None:
            raise ValueError("early_stop is for plain MCTS; per_step already bounds each "
                             "decision")
        if self.horizon is not None and self.reward != "page":
            raise ValueError("horizon cuts rollouts short, so it needs per-step rewards "
                             "(reward=page): a document reward scores the finished episode")
        return self

    def dump(self) -> dict[str, Any]:
        """The options as trees and run settings keep them; ``per_step`` and ``horizon``
        only when set, so runs without them keep the bytes they had."""
        data = self.model_dump()
        for optional in ("per_step", "horizon"):
            if data[optional] is None:
                data.pop(optional)
        return data


class HorizonError(StepwiseError):
    """A rollout horizon for an environment whose step rewards need the whole episode."""


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
