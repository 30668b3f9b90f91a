"""The exact best module sets at a page, by trying all eight.

A page's decision is one of 8 module sets. Where translating is cheap (a simulated
world), the best sets at a state need no heuristic: fork the state, translate the page
with each set, score the page with its reward (``PageRewards``) and keep every set that
reaches the top score; ties are kept, so "the" optimum is a set of sets. The page's memory
update is not run, as the page's own reward does not depend on it.

``SETS`` is the fixed order of the sets: fewest modules first, then the tools' order, so
``cheapest`` (the first best set in it) is a deterministic tie-break.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from typing import Any

from stepwise.tools.longmt.formats import MODULES

ModuleSet = tuple[str, ...]
SETS: tuple[ModuleSet, ...] = tuple(c for n in range(len(MODULES) + 1)
                                    for c in itertools.combinations(MODULES, n))
TIE = 1e-9  # rewards closer than this are equal


def page_translation(steps: Any, state: dict[str, Any], modules: Sequence[str]) -> list[str]:
    """The page's sentence translations at ``state`` when it calls ``modules`` (``PageSteps``)."""
    current = {**state, **steps.query(state, list(modules))}
    return list(steps.translate(current)["current"]["translation"])


def set_rewards(steps: Any, state: dict[str, Any], rewards: Any) -> dict[ModuleSet, float]:
    """Every module set's page reward at ``state`` (``rewards``: a ``PageRewards``)."""
    page = state["page"]
    done = [list(s["translation"]) for s in state["steps"]][:page]
    return {modules: rewards.reward(page, [*done, page_translation(steps, state, modules)])
            for modules in SETS}


def best_of(scores: dict[ModuleSet, float]) -> frozenset[ModuleSet]:
    """The sets whose reward is the highest, ties kept."""
    top = max(scores.values())
    return frozenset(s for s, value in scores.items() if value >= top - TIE)


def best_sets(steps: Any, state: dict[str, Any], rewards: Any) -> frozenset[ModuleSet]:
    """The exact best module sets at ``state``; the first page calls nothing."""
    if state["page"] == 0:
        return frozenset({()})
    return best_of(set_rewards(steps, state, rewards))


def cheapest(sets: Collection[Sequence[str]]) -> ModuleSet:
    """The first of ``sets`` in ``SETS`` order: fewest modules, then the tools' order."""
    canonical = {tuple(m for m in MODULES if m in s) for s in sets}
    return next(s for s in SETS if s in canonical)
