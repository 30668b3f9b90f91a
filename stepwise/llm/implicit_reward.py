"""Ranking a decision's actions by DPO's implicit reward instead of the bare likelihood.

DPO fits r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)) so that chosen steps outrank
rejected ones; it never asks the trained model's own likelihood to do so. Ranked by the
bare log pi(y|x) (``decide="rank"``), a trained policy still carries its reference's prior
over the steps, which differs between module sets by tens of nats (a tool call is longer
than "no modules"), and a few dozen optimizer steps move each step by less than that: the
ranking then shows the prior, not the training. Ranking by the difference to the
reference ranks by exactly what was trained (``decide="reward"``). Before any training
the policy is its reference, so every action scores 0: a tie, broken to the cheapest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError
from stepwise.llm.ranking import Messages, ranker


class ImplicitReward:
    """A trained policy and its reference, scoring steps by log pi - log pi_ref."""

    def __init__(self, policy: Any, reference: Any) -> None:
        self.policy, self.reference = policy, reference
        self._policy_score, self._reference_score = ranker(policy), ranker(reference)

    @property
    def model_name(self) -> str:
        return f"{_name(self.policy)} - {_name(self.reference)}"

    def score_completions(self, prompt: Messages, completions: Sequence[Messages],
                          tools: Sequence[Mapping[str, Any]] | None = None) -> list[float]:
        """Each completion's log-likelihood under the policy less its reference's."""
        mine = self._policy_score(prompt, completions, tools)
        theirs = self._reference_score(prompt, completions, tools)
        return [a - b for a, b in zip(mine, theirs, strict=True)]


def _name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model_label", None)
               or type(model).__name__)


def trained_from(model_uri: str) -> str:
    """The model a ``stepwise train dpo`` output (``hf:DIR``) was trained from: its
    reference, as ``DIR/train.json`` records it."""
    scheme, _, rest = model_uri.partition(":")
    saved = Path(rest) / "train.json" if scheme == "hf" else None
    if saved is None or not saved.is_file():
        raise StepwiseError(f"--decide reward needs a policy trained by stepwise train dpo "
                            f"(hf:DIR with DIR/train.json naming its reference), not "
                            f"{model_uri}")
    try:
        reference = json.loads(saved.read_text("utf-8"))["model"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StepwiseError(f"{saved}: no reference model recorded ({exc})") from None
    return str(reference)
