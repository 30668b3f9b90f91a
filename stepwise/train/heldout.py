"""Held-out evaluation: every policy on the same documents, none of them explored or trained on.

A trained policy is judged where it has never been: documents of another seed of the
world, the same for every row of one table. The rows are the fixed policies (``none``,
``all``, one module), ``auto`` (the translating model deciding), the simulated world's
marker heuristic and exact oracle, the
untrained policy model and each round's trained one; the columns are BLEU, d-BLEU,
agreement with the exact best sets ("= oracle", pages after the first), module calls,
fallbacks and tokens per page. A held-out set that shares a document's source with the
explored set is refused: it would not be held out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stepwise.errors import StepwiseError

BASELINES = ("none", "all", "only:entities", "auto", "markers", "oracle")
COLUMNS = ("bleu", "d_bleu", "oracle_agreement", "module_calls", "fallbacks", "tokens")


def check_held_out(explored: str | Path, held_out: str | Path) -> None:
    """Refuse a held-out set that shares a document (by its source text) with ``explored``."""
    from stepwise.documents.sources import load_documents

    seen = {tuple(doc.src): doc.id for doc in load_documents(Path(explored))}
    for doc in load_documents(Path(held_out)):
        twin = seen.get(tuple(doc.src))
        if twin is not None:
            raise StepwiseError(f"{held_out}: document {doc.id} is also in {explored} (as "
                                f"{twin}); a held-out set must be documents never "
                                "explored, e.g. stepwise sim make --seed 1")


def evaluate(dataset: str | Path, model: Any, *, policy: str = "auto", policy_model: Any = None,
             page_sentences: int = 5, decide: str = "generate",
             decision_max_tokens: int | None = None,
             translation_max_tokens: int | None = None,
             on_document: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """One row: ``policy`` (with ``policy_model`` deciding under auto) over ``dataset``,
    translated by ``model``; with the simulated world, agreement with its exact best sets.
    ``on_document(done, total)`` after each document."""
    from stepwise.agents.longmt import LongMTAgent
    from stepwise.agents.longmt.agreement import Agreement, trace_agreement
    from stepwise.agents.longmt.runs import DocumentDone, compare_policies
    from stepwise.documents.sources import load_documents
    from stepwise.sim.translation.oracle import WorldOracle

    docs = load_documents(Path(dataset))
    oracles = {doc.id: WorldOracle(doc.ref) if doc.world == "translation" else None
               for doc in docs}
    agreements: list[Agreement] = []
    finished = [0]

    def measured(done: DocumentDone) -> None:
        if done.exc is not None:  # one failed document fails the row: re-raised as it was
            raise done.exc
        oracle = oracles[done.document.id]
        if oracle is not None and done.result is not None:  # pages after the first: chosen
            agreements.append(trace_agreement(done.result, done.document.ref, model, oracle))
        finished[0] += 1
        if on_document:
            on_document(finished[0], len(docs))

    agent = LongMTAgent(model, policy=policy, policy_model=policy_model,
                        page_sentences=page_sentences, decision_max_tokens=decision_max_tokens,
                        translation_max_tokens=translation_max_tokens, decide=decide)
    row = compare_policies({policy: agent}, docs, None, oracle_for=lambda doc: oracles[doc.id],
                           on_document=measured).rows[policy]
    found = sum(agreements, Agreement())
    if found.decided:
        row["oracle_agreement"] = found.rate
    return row


def gap_closed(rows: dict[str, dict[str, Any]], policy: str, metric: str = "bleu",
               baselines: Sequence[str] = ("none", "all", "only:entities")) -> float | None:
    """How much of the gap between the best fixed policy and the oracle ``policy`` closes
    (1: all of it, 0: none, negative: worse than the best fixed policy)."""
    fixed = [rows[b][metric] for b in baselines if metric in rows.get(b, {})]
    if not fixed or metric not in rows.get("oracle", {}) or metric not in rows.get(policy, {}):
        return None
    best, top = max(fixed), rows["oracle"][metric]
    return None if top <= best else (rows[policy][metric] - best) / (top - best)
