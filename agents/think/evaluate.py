"""Evaluating a think agent on a policy world: success rate, pass^k, think rate, tokens.

pass^k (tau-bench) is the chance that all of k independent trials of a task succeed,
estimated per task from n trials with c successes as C(c, k) / C(n, k) and averaged over
tasks. It falls with k when an agent is right only some of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from stepwise.agents.think.metrics import RunMetrics
from stepwise.agents.think.options import ThinkOptions
from stepwise.agents.think.worlds import open_episode, task_ids


class TaskOutcome(BaseModel):
    task: str
    trial: int
    success: bool
    status: str
    differences: list[str] = Field(default_factory=list)
    metrics: dict[str, int | float]


class EvalReport(BaseModel):
    """Figures over all tasks and trials; ``simulated`` because the world is a simulation."""

    world: str
    simulated: bool = True
    model: str
    tasks: int
    trials: int
    success_rate: float
    pass_hat_k: dict[int, float]
    think_rate: float
    metrics: dict[str, int | float]
    outcomes: list[TaskOutcome]


def pass_hat_k(trials_per_task: Sequence[tuple[int, int]], k: int) -> float:
    """Mean over tasks of C(c, k) / C(n, k), for (n trials, c successes) per task."""
    scores = [comb(c, k) / comb(n, k) for n, c in trials_per_task if n >= k]
    return sum(scores) / len(scores) if scores else 0.0


def evaluate(model: BaseChatModel, options: ThinkOptions, *, world: str = "airline",
             trials: int = 1, tasks: Sequence[str] | None = None, model_label: str = "",
             think_model: BaseChatModel | None = None,
             on_done: Callable[[TaskOutcome], None] | None = None) -> EvalReport:
    """Run every task ``trials`` times on a fresh world each time and check the end state."""
    chosen = list(tasks) if tasks else task_ids(world)
    outcomes: list[TaskOutcome] = []
    run_metrics: list[RunMetrics] = []
    for task in chosen:
        for trial in range(trials):
            episode = open_episode(world, task, options.tools)
            agent = options.build(model, episode.tools, episode.policy, think_model=think_model)
            run = agent.run(episode.request, thread_id=f"{task}-{trial}")
            check = episode.check() or {"success": False, "differences": []}
            outcome = TaskOutcome(task=task, trial=trial, success=check["success"],
                                  status=run.status, differences=check["differences"],
                                  metrics=run.metrics.as_dict())
            outcomes.append(outcome)
            run_metrics.append(run.metrics)
            if on_done is not None:
                on_done(outcome)
    per_task = [(trials, sum(o.success for o in outcomes if o.task == t)) for t in chosen]
    total = RunMetrics.combine(run_metrics)
    return EvalReport(
        world=world, model=model_label, tasks=len(chosen), trials=trials,
        success_rate=sum(o.success for o in outcomes) / len(outcomes) if outcomes else 0.0,
        pass_hat_k={k: round(pass_hat_k(per_task, k), 4) for k in range(1, trials + 1)},
        think_rate=round(total.think_rate, 4), metrics=total.as_dict(), outcomes=outcomes)
