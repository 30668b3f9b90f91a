"""Evaluating a think agent on a policy world: success rate, pass^k, think rate, tokens.

pass^k (tau-bench) is the chance that all of k independent trials of a task succeed,
estimated per task from n trials with c successes as C(c, k) / C(n, k) and averaged over
tasks. It falls with k when an agent is right only some of the time.

A trial whose model fails (a server that times out, say: ``MODEL_ERRORS``, or another
``StepwiseError``) is one failed trial with its error line, counted as unsuccessful; the
other trials go on. Any other exception is a bug in stepwise and ends the evaluation.

Refusal tasks (the policy says no, so the database must stay as it was) are passed by an
agent that does nothing at all, so success is reported for them and for the tasks that
must change something apart, as well as over all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from stepwise.agents.think.metrics import RunMetrics
from stepwise.agents.think.options import ThinkOptions
from stepwise.agents.think.worlds import open_episode, task_ids
from stepwise.errors import MODEL_ERRORS, StepwiseError, error_line

KINDS = ("change", "refusal")  # the database must change, or the policy refuses


class TaskOutcome(BaseModel):
    task: str
    trial: int
    kind: str  # one of KINDS
    success: bool
    status: str
    differences: list[str] = Field(default_factory=list)
    metrics: dict[str, int | float]
    error: str | None = None  # why the run failed (status "error"); None when it ran


class KindScore(BaseModel):
    """Success over the tasks of one kind (change or refusal)."""

    tasks: int
    trials: int  # task trials run
    success_rate: float


class EvalReport(BaseModel):
    """Figures over all tasks and trials; ``simulated`` because the world is a simulation."""

    world: str
    simulated: bool = True
    model: str
    tasks: int
    trials: int
    success_rate: float  # over all task trials
    by_kind: dict[str, KindScore] = Field(default_factory=dict)  # change, refusal
    pass_hat_k: dict[int, float]
    think_rate: float
    metrics: dict[str, int | float]
    errors: int = 0  # trials whose run failed (their outcomes say why)
    warnings: list[str] = Field(default_factory=list)  # e.g. tools bound but never called
    outcomes: list[TaskOutcome]


def by_kind(outcomes: Sequence[TaskOutcome]) -> dict[str, KindScore]:
    """Success per kind of task, for the kinds that have any."""
    scores = {}
    for kind in KINDS:
        rows = [o for o in outcomes if o.kind == kind]
        if rows:
            rate = sum(o.success for o in rows) / len(rows)
            scores[kind] = KindScore(tasks=len({o.task for o in rows}), trials=len(rows),
                                     success_rate=round(rate, 4))
    return scores


def refusals_only_warning(scores: dict[str, KindScore]) -> str | None:
    """A warning when every success is on a refusal task, which doing nothing passes."""
    refusal, change = scores.get("refusal"), scores.get("change")
    if refusal is None or change is None or not refusal.success_rate or change.success_rate:
        return None
    return (f"every success is on a refusal task ({_tasks(refusal.tasks)}, which an agent "
            f"that changes nothing passes); the {_tasks(change.tasks)} that must change "
            "something all failed")


def _tasks(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"


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
            kind = "refusal" if getattr(episode.task, "policy_refusal", False) else "change"
            agent = options.build(model, episode.tools, episode.policy, think_model=think_model)
            try:
                run = agent.run(episode.request, thread_id=f"{task}-{trial}")
            except (StepwiseError, *MODEL_ERRORS) as exc:  # one failed trial; a bug raises
                outcome = TaskOutcome(task=task, trial=trial, kind=kind, success=False,
                                      status="error", metrics=RunMetrics().as_dict(),
                                      error=error_line(exc))
            else:
                check = episode.check() or {"success": False, "differences": []}
                outcome = TaskOutcome(task=task, trial=trial, kind=kind, success=check["success"],
                                      status=run.status, differences=check["differences"],
                                      metrics=run.metrics.as_dict())
                run_metrics.append(run.metrics)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    per_task = [(trials, sum(o.success for o in outcomes if o.task == t)) for t in chosen]
    total = RunMetrics.combine(run_metrics)
    kinds = by_kind(outcomes)
    return EvalReport(
        world=world, model=model_label, tasks=len(chosen), trials=trials,
        success_rate=sum(o.success for o in outcomes) / len(outcomes) if outcomes else 0.0,
        by_kind=kinds,
        pass_hat_k={k: round(pass_hat_k(per_task, k), 4) for k in range(1, trials + 1)},
        think_rate=round(total.think_rate, 4), metrics=total.as_dict(),
        errors=sum(o.error is not None for o in outcomes),
        warnings=[w for w in [total.no_tool_calls_warning(), refusals_only_warning(kinds)] if w],
        outcomes=outcomes)

