"""Module policies: which memory modules a page calls, one flag each.

``none``, ``all``, ``only:<module>``, ``auto`` (the policy model chooses through tool
calls), ``fixed:<set>;<set>;...`` (a set per page, what the explorer replays: modules
joined by ``+``, ``none`` for the empty set; pages past the list call nothing),
``oracle`` (a simulated world's exact best set: brute force over the 8 sets at the page's
state, ties broken by the cheapest set, see ``optima``) and ``markers`` (a baseline: the
modules the page's marked forms call for, read off the source as a heuristic). Module
names are the tool names or their short forms: summaries, pages, entities.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from stepwise.agents.longmt.optima import cheapest
from stepwise.errors import ConfigError
from stepwise.tools.longmt.formats import MODULES, SHORT_NAMES

if TYPE_CHECKING:
    from stepwise.agents.longmt.page_rewards import PageRewards
    from stepwise.documents.pages import Document
    from stepwise.scoring import IncrementalScorer

PolicyKind = Literal["none", "all", "only", "auto", "fixed", "oracle", "markers"]
POLICY_KINDS = ("none", "all", "only:<module>", "auto", "fixed:<sets>", "oracle", "markers")
WORLD_KINDS = ("oracle", "markers")  # the kinds that need a simulated world


class Oracle(Protocol):
    """A simulated world's knowledge of one document's pages."""

    def rewards(self, document: Document,
                scorer: IncrementalScorer | None = None) -> PageRewards:
        """The page reward that defines "best" (sentence-level where the world knows it)."""

    def best_sets(self, steps: Any, state: dict[str, Any]) -> frozenset[tuple[str, ...]]:
        """The exact best module sets at ``state`` (``steps``: the ``PageSteps``); ties kept."""

    def marker_modules(self, lines: Sequence[str]) -> Sequence[str]:
        """The heuristic: the modules the page's marked forms call for."""



def module_name(name: str) -> str:
    name = name.strip()
    full = SHORT_NAMES.get(name, name)
    if full not in MODULES:
        known = ", ".join([*MODULES, *SHORT_NAMES])
        raise ConfigError(f"unknown memory module {name!r} (known: {known})")
    return full


def module_set(text: str) -> tuple[str, ...]:
    """``entities+pages`` -> the tools in their canonical order; ``none`` or ``-`` -> ()."""
    text = text.strip()
    if text in ("", "none", "-"):
        return ()
    chosen = {module_name(part) for part in text.split("+")}
    return tuple(m for m in MODULES if m in chosen)


@dataclass(frozen=True)
class Policy:
    """A parsed policy; ``modules_for`` answers for every kind except ``auto``."""

    kind: PolicyKind
    text: str
    sets: tuple[tuple[str, ...], ...] = ()

    @property
    def decides(self) -> bool:
        """Whether a model decides the modules (``auto``)."""
        return self.kind == "auto"

    @property
    def needs_world(self) -> bool:
        """Whether the policy asks a simulated world (``oracle``, ``markers``)."""
        return self.kind in WORLD_KINDS

    def modules_for(self, page: int, lines: Sequence[str], oracle: Oracle | None = None,
                    best: Callable[[], Collection[Sequence[str]]] | None = None
                    ) -> tuple[str, ...]:
        """The page's modules; ``best`` gives the exact best sets at the page's state (for
        ``oracle``, which takes the cheapest of them: fewest modules, then the tools' order)."""
        if self.kind == "none":
            return ()
        if self.kind in ("all", "only"):
            return self.sets[0]
        if self.kind == "fixed":
            return self.sets[page] if page < len(self.sets) else ()
        if self.kind in WORLD_KINDS and oracle is None:
            raise ConfigError(f"the {self.kind} policy needs a world that knows each page's "
                              "best modules (a synthetic dataset from stepwise sim make)")
        if self.kind == "oracle":
            if best is None:
                raise ConfigError("the oracle policy needs the page's state to find its best "
                                  "modules")
            return cheapest(best())
        if self.kind == "markers":
            return module_set("+".join(oracle.marker_modules(lines)))
        raise ConfigError(f"the {self.kind} policy decides with a model, not by rule")

    @classmethod
    def parse(cls, text: str) -> Policy:
        text = text.strip()
        kind, _, rest = text.partition(":")
        if kind in ("none", "all", "auto", *WORLD_KINDS) and not rest:
            return cls(kind, text, (MODULES,) if kind == "all" else ())
        if kind == "only" and rest:
            return cls(kind, text, ((module_name(rest),),))
        if kind == "fixed" and rest:
            return cls(kind, text, tuple(module_set(part) for part in rest.split(";")))
        raise ConfigError(f"unknown policy {text!r}; expected one of {', '.join(POLICY_KINDS)} "
                          "(e.g. only:entities or fixed:none;entities+pages)")

    @classmethod
    def fixed(cls, sets: Sequence[Sequence[str]]) -> Policy:
        """A fixed policy from module sets per page (what the explorer builds)."""
        canonical = tuple(module_set("+".join(s)) for s in sets)
        text = "fixed:" + ";".join("+".join(s) or "none" for s in canonical)
        return cls("fixed", text, canonical)
