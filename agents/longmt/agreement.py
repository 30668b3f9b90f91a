"""How often a run's module sets are among the exact best sets of a simulated world.

A translation trace says which modules each page called, not the states the pages were
decided at. The states are rebuilt by replaying the trace's sets in a
``LongMTEnvironment`` (the simulated translator answers the same way every time), and at
each page after the first the chosen set is checked against the world's exact best sets
there ("chosen is among the best", ties counted as agreement). The replay calls each
module with the rule arguments, so a model's own query text is not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stepwise.agents.longmt.optima import cheapest
from stepwise.errors import StepwiseError


@dataclass(frozen=True)
class Agreement:
    """Pages after the first: how many were decided, and how many chose a best set."""

    decided: int = 0
    among_best: int = 0

    @property
    def rate(self) -> float | None:
        return self.among_best / self.decided if self.decided else None

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(self.decided + other.decided, self.among_best + other.among_best)


def chosen_sets(steps: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Per page of a trace, the modules it called successfully, in the tools' order."""
    return [cheapest([{m["tool"] for m in step.get("modules", []) if m["status"] == "ok"}])
            for step in steps]


def agreement_with_best(env: Any, sets: Sequence[Sequence[str]]) -> Agreement:
    """Replay ``sets`` (one per page) in ``env`` and count the pages whose set is best."""
    state, found = env.initial_state(), Agreement()
    for page, modules in enumerate(sets):
        if page:
            best = env.best_actions(state)
            if best is None:
                raise StepwiseError(f"{env.task_id}: the environment knows no best actions")
            chosen = list(cheapest([modules]))
            found += Agreement(1, int(chosen in best))
        state = env.step(state, list(modules) if page else [])
    return found


def trace_agreement(result: Any, ref: Sequence[str], model: Any, oracle: Any) -> Agreement:
    """The agreement of a ``TranslationResult``'s sets with ``oracle``'s best sets, replayed
    with the translator ``model`` on the result's own pages."""
    from stepwise.agents.longmt.environment import LongMTEnvironment

    env = LongMTEnvironment(result.doc_id, result.document, ref, model, src=result.src,
                            tgt=result.tgt, oracle=oracle)
    return agreement_with_best(env, chosen_sets(result.steps))
