"""Module policies: which memory modules a page calls, one flag each.

``none``, ``all``, ``only:<module>``, ``auto`` (the policy model chooses through tool
calls), ``fixed:<set>;<set>;...`` (a set per page, what the explorer replays: modules
joined by ``+``, ``none`` for the empty set; pages past the list call nothing) and
``oracle`` (a world that knows each page's best set). Module names are the tool names or
their short forms: summaries, pages, entities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stepwise.errors import ConfigError
from stepwise.tools.longmt.formats import MODULES, SHORT_NAMES

POLICY_KINDS = ("none", "all", "only:<module>", "auto", "fixed:<sets>", "oracle")

# A world's knowledge of the best module set for a page, given the page's source lines.
Oracle = Callable[[Sequence[str]], Sequence[str]]


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

    kind: str  # none | all | only | auto | fixed | oracle
    text: str
    sets: tuple[tuple[str, ...], ...] = ()

    @property
    def decides(self) -> bool:
        """Whether a model decides the modules (``auto``)."""
        return self.kind == "auto"

    def modules_for(self, page: int, lines: Sequence[str], oracle: Oracle | None = None
                    ) -> tuple[str, ...]:
        if self.kind == "none":
            return ()
        if self.kind in ("all", "only"):
            return self.sets[0]
        if self.kind == "fixed":
            return self.sets[page] if page < len(self.sets) else ()
        if self.kind == "oracle":
            if oracle is None:
                raise ConfigError("the oracle policy needs a world that knows each page's "
                                  "best modules (a synthetic dataset from stepwise sim make)")
            return module_set("+".join(oracle(lines)))
        raise ConfigError(f"the {self.kind} policy decides with a model, not by rule")

    @classmethod
    def parse(cls, text: str) -> Policy:
        text = text.strip()
        kind, _, rest = text.partition(":")
        if kind in ("none", "all", "auto", "oracle") and not rest:
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
