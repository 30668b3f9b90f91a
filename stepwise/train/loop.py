"""Iterative preference training: explore with the current policy, pair, train, repeat.

Round r explores the dataset (round 1 with the settings' rollout, later rounds with
the previous round's trained model deciding the modules in rollouts), extracts pairs,
trains from the previous round's model (which is also DPO's reference, as in iterative
DPO: APT, MCTS-DPO) and measures the new model as the LongMT module policy. Before round
1 the baselines (fixed policies, the simulated world's heuristic and oracle, the untrained
model) are measured, and every model is measured on the same documents: the held-out set
when one is given (``heldout.json``). Each stage leaves a marker, so a killed loop resumes
at the stage it was in.

A document whose search fails is left out of its round's pairs (and counted in the row);
a stage that fails as a whole stops the loop with ``StageFailed``, the rounds before it
kept in rounds.json, and a rerun resumes at that stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, model_validator

from stepwise.agents.environments import Decide, LongMTRollout
from stepwise.errors import StepwiseError, error_line
from stepwise.files import write_atomic
from stepwise.jsonl import read_json
from stepwise.run_lock import lock_run
from stepwise.run_settings import check_saved_settings
from stepwise.train.dpo import DPOSettings, train_dpo

# search's Reward and Negatives, spelled here so that reading settings loads no search code
StepReward = Literal["document", "page"]
Negatives = Literal["worst", "closest", "both"]


class LoopSettings(BaseModel):
    dataset: str
    model: str = "sim:translator"  # translates, and scores rollouts
    start: str = "tiny"  # the policy model trained in round 1
    rounds: int = Field(2, ge=1)
    simulations: int = Field(24, ge=1)
    page_sentences: int = Field(5, ge=1)
    rollout: LongMTRollout = "random"  # round 1's; later rounds roll out with the trained policy
    seed: int = 0
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    # Constructor kwargs that bound the calls of the translating model and of the policy
    # models (max_tokens, timeout, sampling), and LongMT's per-call limits (None: none).
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    decision_max_tokens: int | None = None
    translation_max_tokens: int | None = None
    # How the trained policy decides: generate its turn, rank the sets by its likelihood, or
    # by its implicit reward against ``start`` (reward; the untrained row then ranks).
    decide: Decide = "generate"
    per_step: int | None = Field(None, ge=1)  # step-by-step search: simulations per decision
    reward: StepReward = "document"  # what a rollout's step is scored by: document or page
    horizon: int | None = Field(None, ge=0)  # page rewards: pages a rollout plays past its node
    negatives: Negatives = "worst"  # a pair's rejected side: worst, closest (a near miss), both
    # Documents never explored or trained on: every round, the untrained model and the
    # baselines are measured there (``heldout``); None: on the explored dataset itself.
    heldout: str | None = None

    @model_validator(mode="after")
    def _horizon_with_page_rewards(self) -> LoopSettings:
        if self.horizon is not None and self.reward != "page":
            raise ValueError("horizon cuts rollouts short, so it needs reward=page: a "
                             "document reward scores the finished document")
        return self


LOCK_NAME = "loop.lock"  # one loop writes a run folder at a time
UNTRAINED = "untrained"  # the held-out row of the start model, before any training

class Progressed(Protocol):
    """How far the running stage is: done of total (None: not known ahead) units, e.g.
    (12, 48, "simulations"), and what it is doing now (``detail``; a stage whose units
    differ in cost, such as rule policies and a model's, gives no time left)."""

    def __call__(self, done: int, total: int | None, unit: str, detail: str = "",
                 *, timed: bool = True) -> None: ...


class StageFailed(StepwiseError):
    """A loop stage that failed as a whole; ``rows`` are the rounds finished before it."""

    def __init__(self, message: str, rows: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.rows = rows


def _done(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def _search(settings: LoopSettings, policy_model: str | None, round_: int):
    """A round's environments (``EnvSpec``) and search options."""
    from stepwise.agents.environments import EnvSpec
    from stepwise.search.options import ExploreOptions

    rollout = "auto" if policy_model else settings.rollout
    spec = EnvSpec(env="longmt", dataset=settings.dataset, model=settings.model,
                   page_sentences=settings.page_sentences, rollout=rollout,
                   policy_model=policy_model, model_kwargs=json.dumps(settings.model_kwargs),
                   policy_model_kwargs=json.dumps(settings.policy_kwargs),
                   decision_max_tokens=settings.decision_max_tokens,
                   translation_max_tokens=settings.translation_max_tokens,
                   decide=settings.decide, reference_model=settings.start if policy_model and
                   settings.decide == "reward" else None)
    options = ExploreOptions(simulations=settings.simulations, rollout=rollout,
                             reward=settings.reward, per_step=settings.per_step,
                             horizon=settings.horizon, seed=settings.seed + round_)
    return spec, options


def check_documents(settings: LoopSettings) -> list[str]:
    """The documents' ids, once the dataset and the held-out set are known to be readable,
    with references, translatable by the model and apart from each other."""
    from stepwise.documents.sources import load_documents
    from stepwise.sim.translation.translator import check_translatable

    task_ids = _search(settings, None, 1)[0].task_ids()  # read, translatable, with references
    if settings.heldout:
        docs = load_documents(Path(settings.heldout))
        check_translatable(settings.model, docs)
        missing = next((doc.id for doc in docs if doc.ref is None), None)
        if missing is not None:
            raise StepwiseError(f"{settings.heldout}: document {missing} has no reference to "
                                "score the held-out table against")
        from stepwise.train.heldout import check_held_out

        check_held_out(settings.dataset, settings.heldout)
    return task_ids


def check_inputs(settings: LoopSettings) -> None:
    """Refuse, before the loop folder holds anything, every input a later stage would fail
    on: the documents (``check_documents``) and a per-page budget below a page's actions.
    A loop.json written first would refuse the corrected command as "other settings"."""
    task_ids = check_documents(settings)
    if settings.per_step is not None:
        from stepwise.search.options import check_budget

        spec, options = _search(settings, None, 1)
        check_budget(spec.factory()[0](task_ids[0]), options, "a LongMT page")


def explore_round(settings: LoopSettings, folder: Path, policy_model: str | None,
                  round_: int, on_progress: Progressed | None = None) -> dict[str, Any]:
    """Search every document and write the round's pairs; returns the run summary."""
    from stepwise.search.run import PairOptions, explore_tasks, simulations_done

    spec, options = _search(settings, policy_model, round_)
    rollout = options.rollout
    make_env, cached = spec.factory()
    task_ids = spec.task_ids()
    total = None if settings.per_step else len(task_ids) * settings.simulations  # unknown
    done = [simulations_done(folder, task_ids, options)]  # a resumed stage starts there

    def counted(_task_id: str, _iteration: int) -> None:
        done[0] += 1
        if on_progress:
            on_progress(done[0], total, "simulations")

    if on_progress:
        on_progress(done[0], total, "simulations")
    report = explore_tasks(task_ids, make_env, options, folder, env_name="longmt",
                           pair_options=PairOptions(negatives=settings.negatives),
                           on_iteration=counted, model_counts=lambda: cached.counts,
                           simulated=settings.model.startswith("sim:"))
    if not report.finished:
        first = next(iter(report.failed.items()), ("", "no documents"))
        raise StepwiseError(f"every document failed ({first[0]}: {first[1]})")
    row = {"pairs": report.pairs, "rollout": rollout, **report.optimal_rates,
           "failed_documents": report.failed}
    if policy_model:  # what the policy deciding in rollouts cost: scorings, and cache hits
        decider = make_env(task_ids[0]).steps.policy_model
        if getattr(decider, "score_counts", None) is not None:
            row["policy_scorings"] = decider.score_counts
    return row


def evaluate_policy(settings: LoopSettings, policy_model: str | None,
                    policy: str = "auto",
                    on_document: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``policy`` (auto: ``policy_model`` deciding the modules) while ``settings.model``
    translates, on the held-out documents (else the explored ones)."""
    from stepwise.llm import from_uri
    from stepwise.train.heldout import evaluate

    decider = from_uri(policy_model, **settings.policy_kwargs) if policy_model else None
    decide = settings.decide if decider else "generate"
    if decide == "reward" and policy_model == settings.start:
        decide = "rank"  # untrained, the policy is its reference: every reward would be 0
    elif decide == "reward":
        from stepwise.llm.implicit_reward import ImplicitReward

        decider = ImplicitReward(decider, from_uri(settings.start, **settings.policy_kwargs))
    row = evaluate(settings.heldout or settings.dataset,
                   from_uri(settings.model, **settings.model_kwargs), policy=policy,
                   policy_model=decider, page_sentences=settings.page_sentences,
                   decide=decide, decision_max_tokens=settings.decision_max_tokens,
                   translation_max_tokens=settings.translation_max_tokens,
                   on_document=on_document)
    return {**row, "decide": decide}


def baseline_rows(settings: LoopSettings,
                  on_progress: Progressed | None = None) -> dict[str, Any]:
    """The rows every round is compared with: the rule policies and the untrained model."""
    from stepwise.documents.sources import load_documents
    from stepwise.train.heldout import BASELINES

    docs = load_documents(Path(settings.heldout or settings.dataset))
    simulated_world = all(doc.world == "translation" for doc in docs)
    policies = [policy for policy in BASELINES
                if simulated_world or policy not in ("markers", "oracle")]
    rows: dict[str, Any] = {}
    for policy in [*policies, UNTRAINED]:
        shown = f"{UNTRAINED} {settings.start}" if policy == UNTRAINED else policy

        def counted(done: int, total: int, shown: str = shown) -> None:
            if on_progress:  # a model's row takes far longer than a rule's: no time left
                on_progress(len(rows), len(policies) + 1, "policies",
                            f"{shown}: {done}/{total} documents", timed=False)

        counted(0, len(docs))
        rows[policy] = (evaluate_policy(settings, settings.start, on_document=counted)
                        if policy == UNTRAINED else
                        evaluate_policy(settings, None, policy, on_document=counted))
    if on_progress:
        on_progress(len(rows), len(rows), "policies", timed=False)
    return rows


def _train(settings: LoopSettings, folder: Path, start: str, round_: int,
           on_step: Callable[[int, int], None] | None,
           on_progress: Progressed | None = None) -> dict[str, Any]:
    dpo = settings.dpo.model_copy(update={"seed": settings.dpo.seed + round_})

    def stepped(step: int, total: int) -> None:
        if on_step:
            on_step(step, total)
        if on_progress:
            on_progress(step, total, "steps")

    if on_progress:
        on_progress(0, dpo.max_steps, "steps")
    result = train_dpo(folder / "explore" / "pairs.jsonl", start, folder / "model", dpo,
                       on_step=stepped)
    return {"reward_accuracy_before": result.before.get("reward_accuracy"),
            "reward_accuracy_after": result.after.get("reward_accuracy"),
            "train_fit": result.train_fit.get("reward_accuracy"),
            "steps": result.steps, "seconds": result.seconds}


def _write_held_out(out: Path, settings: LoopSettings, rows: dict[str, dict[str, Any]]) -> None:
    from stepwise.train.heldout import gap_closed

    trained = [label for label in rows if label.startswith("round ")]
    write_atomic(out / "heldout.json", json.dumps({
        "documents": settings.heldout or settings.dataset, "held_out": bool(settings.heldout),
        "simulated": settings.model.startswith("sim:"), "rows": rows,
        "bleu_gap_closed": {label: gap_closed(rows, label) for label in [UNTRAINED, *trained]},
    }, indent=1))


def run_loop(settings: LoopSettings, out: Path,
             on_stage: Callable[[int, str], None] | None = None,
             on_step: Callable[[int, int], None] | None = None,
             on_progress: Progressed | None = None) -> list[dict[str, Any]]:
    """Every round's figures, one dict per round (also in OUT/rounds.json); the held-out
    table in OUT/heldout.json.

    ``on_stage(round, name)`` says a stage begins (round 0: the baselines), ``on_step`` how
    far training is, ``on_progress`` how far the running stage is, whichever it is."""
    saved = out / "loop.json"
    wanted = settings.model_dump()
    if wanted["horizon"] is None:  # loops saved before there was a horizon resume as they were
        wanted.pop("horizon")
    check_saved_settings(saved, wanted, "loop")
    check_inputs(settings)  # before any page, and before the folder holds anything
    with lock_run(out, LOCK_NAME, "loop", "wait for it to finish or use another --out"):
        write_atomic(saved, json.dumps(wanted, indent=1))
        return _rounds(settings, out, on_stage, on_step, on_progress)


def _rounds(settings: LoopSettings, out: Path, on_stage: Callable[[int, str], None] | None,
            on_step: Callable[[int, int], None] | None,
            on_progress: Progressed | None) -> list[dict[str, Any]]:
    """The baselines, then each round's stages, each kept when done (``run_loop``'s work,
    under its lock)."""
    rows: list[dict[str, Any]] = []

    def stage(folder: Path, round_: int, name: str,
              run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A stage's figures: kept from an earlier run, or computed and kept now."""
        if on_stage:
            on_stage(round_, name)
        done = _done(folder / f"{name}.done.json")
        if done is not None:
            return done
        where = f"round {round_} {name}" if round_ else name
        try:
            done = run()
        except StepwiseError as exc:
            raise StageFailed(f"{where} failed: {exc}", rows) from exc
        except Exception as exc:  # any other failure: stop the loop cleanly, rounds kept
            raise StageFailed(f"{where} failed: {error_line(exc)}", rows) from exc
        write_atomic(folder / f"{name}.done.json", json.dumps(done))
        return done

    table = stage(out / "heldout", 0, "baselines", lambda: baseline_rows(settings, on_progress))
    _write_held_out(out, settings, table)
    policy: str | None = None  # round 1 explores without a trained policy
    start = settings.start
    for round_ in range(1, settings.rounds + 1):
        folder = out / f"round-{round_}"
        explored = stage(folder, round_, "explore", lambda f=folder, p=policy, r=round_:
                         explore_round(settings, f / "explore", p, r, on_progress))
        trained = stage(folder, round_, "train", lambda f=folder, s=start, r=round_:
                        _train(settings, f, s, r, on_step, on_progress))
        policy = start = f"hf:{folder / 'model'}"
        measured = stage(folder, round_, "evaluate",
                         lambda p=policy: evaluate_policy(settings, p, on_document=(
                             lambda done, total: on_progress(done, total, "documents"))
                             if on_progress else None))
        table[f"round {round_}"] = measured
        _write_held_out(out, settings, table)
        explored = {**explored, "failed_documents": len(explored.get("failed_documents", {}))}
        rows.append({"round": round_, **explored, **trained,
                     **{k: measured.get(k) for k in ("bleu", "chrf", "module_calls",
                                                     "fallbacks", "oracle_agreement")}})
        write_atomic(out / "rounds.json", json.dumps(rows, indent=1))
    return rows
