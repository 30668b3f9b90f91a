"""Iterative preference training: explore with the current policy, pair, train, repeat.

Round r explores the dataset (round 1 with the settings' rollout, later rounds with
the previous round's trained model deciding the modules in rollouts), extracts pairs,
trains from the previous round's model (which is also DPO's reference, as in iterative
DPO: APT, MCTS-DPO) and measures the new model as the LongMT module policy. Each stage
leaves a marker, so a killed loop resumes at the stage it was in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from stepwise.errors import StepwiseError
from stepwise.files import write_atomic
from stepwise.train.dpo import DPOSettings, train_dpo


class LoopSettings(BaseModel):
    dataset: str
    model: str = "sim:translator"  # translates, and scores rollouts
    start: str = "tiny"  # the policy model trained in round 1
    rounds: int = Field(2, gt=0)
    simulations: int = Field(24, gt=0)
    page_sentences: int = Field(5, gt=0)
    rollout: str = "random"  # round 1's rollouts; later rounds roll out with the trained policy
    seed: int = 0
    dpo: DPOSettings = Field(default_factory=DPOSettings)


def _done(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def explore_round(settings: LoopSettings, folder: Path, policy_model: str | None,
                  round_: int) -> dict[str, Any]:
    """Search every document and write the round's pairs; returns the run summary."""
    from stepwise.agents.environments import EnvSpec
    from stepwise.search.explorer import ExploreOptions
    from stepwise.search.run import explore_tasks

    rollout = "auto" if policy_model else settings.rollout
    spec = EnvSpec(env="longmt", dataset=settings.dataset, model=settings.model,
                   page_sentences=settings.page_sentences, rollout=rollout,
                   policy_model=policy_model)
    make_env, cached = spec.factory()
    options = ExploreOptions(simulations=settings.simulations,
                             rollout=rollout,  # type: ignore[arg-type]
                             seed=settings.seed + round_)
    report = explore_tasks(spec.task_ids(), make_env, options, folder, env_name="longmt",
                           model_counts=lambda: cached.counts,
                           simulated=settings.model.startswith("sim:"))
    return {"pairs": report.pairs, "rollout": rollout, **report.optimal_rates}


def evaluate_policy(settings: LoopSettings, policy_model: str) -> dict[str, Any]:
    """The trained model deciding the modules while ``settings.model`` translates."""
    from stepwise.agents.longmt import LongMTAgent
    from stepwise.agents.longmt.evaluate import DocOutcome, policy_scores
    from stepwise.documents.sources import load_documents
    from stepwise.llm import from_uri
    from stepwise.sim.translation.language import oracle_modules

    agent = LongMTAgent(from_uri(settings.model), policy="auto",
                        policy_model=from_uri(policy_model),
                        page_sentences=settings.page_sentences)
    outcomes, agree, decided = [], 0, 0
    for doc in load_documents(Path(settings.dataset)):
        result = agent.translate(doc.src, src=doc.src_lang, tgt=doc.tgt_lang, doc_id=doc.id)
        outcomes.append(DocOutcome(doc.id, doc.tgt_lang, result.lines, result.totals(), doc.ref))
        if doc.world == "translation":
            for step in result.steps[1:]:  # the first page has nothing to look up
                chosen = sorted({m["tool"] for m in step["modules"] if m["status"] == "ok"})
                agree += chosen == sorted(oracle_modules(step["source"]))
                decided += 1
    row = policy_scores(outcomes)
    if decided:
        row["oracle_agreement"] = agree / decided
    return row


def run_loop(settings: LoopSettings, out: Path,
             on_stage: Callable[[int, str], None] | None = None,
             on_step: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Every round's figures, one dict per round (also in OUT/rounds.json)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "loop.json"
    wanted = settings.model_dump()
    if saved.is_file() and json.loads(saved.read_text(encoding="utf-8")) != wanted:
        raise StepwiseError(f"{out} holds a loop with other settings; use another --out")
    write_atomic(saved, json.dumps(wanted, indent=1))
    rows: list[dict[str, Any]] = []
    policy: str | None = None  # round 1 explores without a trained policy
    start = settings.start
    for round_ in range(1, settings.rounds + 1):
        folder = out / f"round-{round_}"
        if on_stage:
            on_stage(round_, "explore")
        explored = _done(folder / "explore.done.json")
        if explored is None:
            explored = explore_round(settings, folder / "explore", policy, round_)
            write_atomic(folder / "explore.done.json", json.dumps(explored))
        if on_stage:
            on_stage(round_, "train")
        trained = _done(folder / "train.done.json")
        if trained is None:
            dpo = settings.dpo.model_copy(update={"seed": settings.dpo.seed + round_})
            result = train_dpo(folder / "explore" / "pairs.jsonl", start, folder / "model",
                               dpo, on_step=on_step)
            trained = {"reward_accuracy_before": result.before.get("reward_accuracy"),
                       "reward_accuracy_after": result.after.get("reward_accuracy"),
                       "train_fit": result.train_fit.get("reward_accuracy"),
                       "steps": result.steps, "seconds": result.seconds}
            write_atomic(folder / "train.done.json", json.dumps(trained))
        policy = start = f"hf:{folder / 'model'}"
        if on_stage:
            on_stage(round_, "evaluate")
        measured = _done(folder / "evaluate.done.json")
        if measured is None:
            measured = evaluate_policy(settings, policy)
            write_atomic(folder / "evaluate.done.json", json.dumps(measured))
        rows.append({"round": round_, **explored, **trained,
                     **{k: measured.get(k) for k in ("bleu", "chrf", "module_calls",
                                                     "fallbacks", "oracle_agreement")}})
        write_atomic(out / "rounds.json", json.dumps(rows, indent=1))
    return rows
