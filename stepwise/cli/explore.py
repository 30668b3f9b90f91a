"""``stepwise explore``: MCTS over an agent's steps for every task of a dataset.

Writes RUN/trees/<task>.json, RUN/pairs.jsonl (step-level DPO pairs) and RUN/summary.json;
a run killed at any point continues with ``--resume`` and ends with the same pairs.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from stepwise.agents.environments import EnvName, LongMTRollout
from stepwise.cli.common import (
    DECISION_TOKENS,
    LONGMT_MAX_TOKENS,
    LONGMT_TOKENS_WHY,
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    HorizonOpt,
    ModelNameOpt,
    ModelOpt,
    PageSentencesOpt,
    RepetitionPenaltyOpt,
    TaskFailures,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    app,
    call_kwargs,
    cli_errors,
    err,
    hold_threads,
    max_tokens_option,
    options_checked,
    out,
    progress_bar,
    resume_command,
    stop_on_ctrl_c,
)
from stepwise.cli.translate import DecideOpt
from stepwise.cli.wording import plural
from stepwise.errors import StepwiseError
from stepwise.jsonl import read_json

# The closed sets of the search's settings, which refuse anything else too (ExploreOptions,
# PairOptions); spelled here since --help must not import the search. --env's and
# --rollout's are EnvSpec's own, from a module that imports nothing heavy.
Reward = Literal["document", "page"]
QAggregation = Literal["mean", "max"]
Negatives = Literal["worst", "closest", "both"]

THINK_MAX_TOKENS = 512  # --env think: an agent turn is a tool call or a short answer
MaxTokensOpt = max_tokens_option(LONGMT_MAX_TOKENS, f"longmt, {LONGMT_TOKENS_WHY}; "
                                 f"{THINK_MAX_TOKENS} for --env think, an agent turn")


@app.command()
@cli_errors
def explore(
    dataset: Annotated[Path, typer.Argument(help="longmt: a dataset .jsonl or a folder "
                                            "holding dataset.jsonl (e.g. from stepwise sim "
                                            "make --out), a folder of *.<src> files or one "
                                            "file. think: a policy world (airline).")],
    model: ModelOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="The run folder.")],
    env: Annotated[EnvName, typer.Option(help="The environment: longmt (the action at a page "
                                         "is its set of memory modules) or think (at a "
                                         "turn: act, or think with a think tool).")
                   ] = "longmt",
    think_tools: Annotated[str, typer.Option(help="think: the think tools a turn may use, "
                                             "comma-separated.")] = "think",
    act_samples: Annotated[int, typer.Option(min=1, help="think: sample each act turn this many "
                                             "times as sibling actions (one n > 1 request "
                                             "where the backend supports it).")] = 1,
    simulations: Annotated[int | None, typer.Option(help="Plain MCTS: iterations per task, "
                                                    "searched from the root (default 32).")
                           ] = None,
    per_step: Annotated[int | None, typer.Option(help="Step by step instead: this many "
                                                 "simulations per decision, then commit to "
                                                 "its best child (max Q, then visits) and "
                                                 "search the next decision from there, so "
                                                 "every step gets sibling pairs; the cost is "
                                                 "N x decisions. At least the actions of a "
                                                 "decision (8 at a LongMT page). Not with "
                                                 "--simulations or --early-stop.")] = None,
    horizon: HorizonOpt = None,
    seed: Annotated[int, typer.Option(help="Seeds every random choice, sampled model calls "
                                      "included: same seed, same trees and pairs.")] = 0,
    c: Annotated[float, typer.Option("--c", help="UCB1 exploration constant.")] = 1.4,
    width: Annotated[int | None, typer.Option(help="Actions expanded per node, sampled "
                                              "(default: all).")] = None,
    rollout: Annotated[LongMTRollout, typer.Option(help="Simulation policy: random (as in "
                                                   "the LongMT design) or auto (the agent's "
                                                   "own choices: --policy-model, else "
                                                   "--model, decides; longmt).")
                       ] = "random",
    policy_model: Annotated[str | None, typer.Option(help="longmt: the model that decides "
                                                     "the modules in auto rollouts, e.g. "
                                                     "hf:DIR from stepwise train dpo.")] = None,
    reward: Annotated[Reward, typer.Option(help="document (wins = score / baseline) or page "
                                        "(each step's own score, from its page).")] = "document",
    q: Annotated[QAggregation, typer.Option("--q", help="Q aggregation: mean or max.")] = "mean",
    early_stop: Annotated[int | None, typer.Option(help="Stop a task when its best path has "
                                                   "been stable this many iterations.")] = None,
    min_visits: Annotated[int, typer.Option(min=1, help="Pairs: fewest visits of either "
                                            "side.")] = 1,
    min_delta_q: Annotated[float, typer.Option(min=0.0, help="Pairs: smallest Q "
                                               "difference.")] = 0.0,
    all_parents: Annotated[bool, typer.Option("--all-parents", help="Pairs at every expanded "
                                              "parent, not only along the best path.")] = False,
    negatives: Annotated[Negatives, typer.Option(help="Pairs: the rejected side: worst (the min-Q "
                                           "sibling), closest (the best sibling below the "
                                           "chosen one: a near miss) or both.")] = "worst",
    stepwise_format: Annotated[bool, typer.Option("--stepwise-format", help="Write TRL's "
                                                  "stepwise-supervision rows (prompt, "
                                                  "completions, labels) instead of preference "
                                                  "pairs.")] = False,
    tokenizer: Annotated[Path | None, typer.Option(help="A local Hugging Face model or "
                                                   "tokenizer folder: drop pairs whose prompt "
                                                   "tokens are not a prefix of prompt + step "
                                                   "under its chat template.")] = None,
    src: Annotated[str | None, typer.Option(help="Source language (files and folders).")] = None,
    tgt: Annotated[str | None, typer.Option(help="Target language (files and folders).")] = None,
    page_sentences: PageSentencesOpt = 10,
    workers: Annotated[int, typer.Option(min=1, help="Tasks searched at once.")] = 1,
    max_concurrent: Annotated[int | None, typer.Option(min=1, help="Model calls in flight at most, "
                                                       "over all workers (per Ray worker "
                                                       "process with --ray).")] = None,
    parallel: Annotated[int, typer.Option(min=1, help="Simulations in flight per task (virtual "
                                          "loss keeps them on different paths).")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray", help="Spread tasks over a Ray cluster: 'local' starts one here, 'auto' joins "
        "a running one, or a Ray address. The run folder must be on a filesystem every "
        "worker sees (needs the distributed extra).")] = None,
    model_name: ModelNameOpt = None,
    max_tokens: MaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    decide: DecideOpt = "generate",
    threads: ThreadsOpt = None,
) -> None:
    """Search an agent's step-level choices with MCTS and export step-level DPO pairs.

    Per task: select (UCB1) -> expand (every allowed action) -> simulate (rollout to the
    end, scored) -> backpropagate (wins / visits = Q). Per parent, the max-Q child is
    chosen and the min-Q child rejected. A task that fails (a server timing out, say) is
    reported and the others go on; the exit status is then 1, and --resume redoes only the
    failed tasks, from where their event logs stopped. The first Ctrl-C stops each task once
    its simulations in flight are backed up (exit 130; --resume goes on from there), the
    second at once.

    Plain MCTS (--simulations, the default) spends its budget near the root; --per-step N
    searches each decision with N simulations, then moves on to its best child, so every
    step of every episode gets a pair. The summary counts the decisions seen, those with a
    pair and why the others gave none, and the visit entropy per depth (1: visits spread
    evenly over the children).

    Example:
      [bold]stepwise sim make --world translation --docs 4 --out synth[/bold]
      [bold]stepwise explore synth/dataset.jsonl --model sim:translator --page-sentences 5 --simulations 64 --out run1[/bold]
      [bold]stepwise explore synth/dataset.jsonl --model sim:translator --reward page --per-step 16 --horizon 1 --out run3[/bold]
      [bold]stepwise explore airline --env think --model sim:airline-oracle --think-tools think,verify --out run2[/bold]
    """
    hold_threads(threads, workers, parallel)  # every task's simulations share the cores
    from stepwise.agents.environments import EnvSpec
    from stepwise.search.options import ExploreOptions
    from stepwise.search.run import PairOptions, check_settings, hold_run

    # Every input is checked before the run folder holds anything: a start refused here
    # leaves nothing that would refuse the corrected command ("already holds a run").
    if per_step is not None and (simulations is not None or early_stop is not None):
        raise StepwiseError("--per-step is a budget per decision: give it without "
                            "--simulations and --early-stop")
    if horizon is not None and (reward != "page" or env != "longmt"):
        raise StepwiseError("--horizon cuts rollouts short, so it needs --reward page on "
                            "--env longmt (a document reward, or a think task's outcome, "
                            "scores only the finished episode)")
    with options_checked():  # the search's ranges are ExploreOptions' fields
        options = ExploreOptions(simulations=32 if simulations is None else simulations, c=c,
                                 width=width, per_step=per_step, rollout=rollout,
                                 reward=reward, q=q, early_stop=early_stop, seed=seed,
                                 parallel=parallel, horizon=horizon)
    calls = CallOptions.from_cli(LONGMT_MAX_TOKENS if env == "longmt" else THINK_MAX_TOKENS,
                                 max_tokens, timeout, temperature, None, repetition_penalty,
                                 device, dtype)
    model_kwargs = _kwargs_for(model, model_name, calls)
    decider_kwargs = _kwargs_for(policy_model, model_name, calls) if policy_model else {}
    reference = None
    if decide == "reward":  # rollouts rank by a trained policy's implicit reward
        from stepwise.llm.implicit_reward import trained_from

        if policy_model is None:
            raise StepwiseError("--decide reward ranks a trained --policy-model against the "
                                "model it was trained from: give --policy-model hf:DIR")
        reference = trained_from(policy_model)
    spec = EnvSpec(env=env, dataset=str(dataset), model=model, model_name=model_name,
                   page_sentences=page_sentences,
                   think_tools=tuple(t.strip() for t in think_tools.split(",")),
                   act_samples=act_samples,
                   src=src, tgt=tgt, max_concurrent=max_concurrent, rollout=rollout,
                   policy_model=policy_model, model_kwargs=json.dumps(model_kwargs),
                   policy_model_kwargs=json.dumps(decider_kwargs),
                   decision_max_tokens=calls.capped(DECISION_TOKENS).max_tokens
                   if "max_tokens" in (decider_kwargs if policy_model else model_kwargs)
                   else None,
                   translation_max_tokens=calls.max_tokens if "max_tokens" in model_kwargs
                   else None, decide=decide, reference_model=reference,
                   batch=rollout_batch((model, policy_model), 1 if ray_address else workers,
                                       parallel))
    task_ids = spec.task_ids()  # the dataset (or world) read and checked
    checker = None
    if tokenizer is not None:
        from transformers import AutoTokenizer

        from stepwise.llm.hf import check_model_dir

        checker = AutoTokenizer.from_pretrained(str(check_model_dir(str(tokenizer))))
    factory = None
    if task_ids and (ray_address is None or per_step is not None):
        # the environments (think tools included), and a budget too small, before any search
        factory = spec.factory()
        if per_step is not None:
            from stepwise.search.options import check_budget

            check_budget(factory[0](task_ids[0]), options,
                         "a LongMT page" if env == "longmt" else f"a {env} decision")
    pair_options = PairOptions(min_visits, min_delta_q, "all" if all_parents else "best_path",
                               "stepwise" if stepwise_format else "preference", checker,
                               negatives)
    settings = {"dataset": str(dataset), "env": env, "model": model, "model_name": model_name,
                "page_sentences": page_sentences, "think_tools": think_tools,
                "act_samples": act_samples, "policy_model": policy_model,
                **({"decide": decide} if decide != "generate" else {}),
                # what changes the answers (a timeout does not)
                "calls": {k: v for k, v in calls.values().items() if k != "timeout"},
                "options": options.dump(),
                "pairs": {"min_visits": min_visits, "min_delta_q": min_delta_q,
                          "scope": "all" if all_parents else "best_path",
                          "stepwise_format": stepwise_format,
                          "tokenizer": str(tokenizer) if tokenizer else None,
                          **({"negatives": negatives} if negatives != "worst" else {})}}
    resume_with = resume_command("explore", f"stepwise explore {dataset} --out {out_dir} "
                                 "--resume, with the other options as before")
    with (stop_on_ctrl_c("simulations", resume_with, graceful=ray_address is None) as stop,
          hold_run(out_dir)):  # a second explore on this folder is refused until this one ends
        check_settings(out_dir, settings, resume)
        simulated = model.startswith("sim:")
        if ray_address is not None:
            report = _explore_on_ray(spec, task_ids, options, out_dir, ray_address, pair_options,
                                     simulated)
        else:
            report = _explore_here(spec, task_ids, options, out_dir, workers, pair_options,
                                   simulated, factory, stop)
    summary = read_json(out_dir / "summary.json")
    out.print_json(json.dumps(summary))
    if model.startswith("sim:"):
        out.print("[yellow]simulated: scores and Q-values come from a synthetic world[/yellow]")
    out.print(decisions_line(summary["decisions"]), highlight=False)
    out.print(f"{plural(report.pairs, 'pair')} in {out_dir / 'pairs.jsonl'}; trees in "
              f"{out_dir / 'trees'}/")
    if report.stopped:
        err.print(f"stopped: {summary['finished']} of {plural(len(task_ids), 'task')} "
                  f"finished; resume with: {resume_with}", highlight=False, markup=False,
                  emoji=False, soft_wrap=True)
        raise typer.Exit(130)
    failures = TaskFailures()
    failures.errors.update(report.failed)
    failures.exit_if_any(len(task_ids), "rerun the same command with --resume to redo only "
                                        "those")


NO_PAIR_BECAUSE = {  # summary.json's no_pair_because: what the parents without a pair had
    "one_action": "had one action", "too_few_visits": "had too few visited actions",
    "all_children_equal_q": "had every action at the same Q",
    "below_min_delta_q": "had a Q difference below --min-delta-q",
    "no_prompt": "had no decision prompt", "no_completion": "had a side without a step",
    "same_completion": "had the same step on both sides",
    "dropped_by_tokenizer": "had their pair dropped by the --tokenizer check"}


def decisions_line(decisions: dict) -> str:
    """The summary's decision counts in one line: seen, with a pair, why not the others."""
    counted = [(name, count) for name, count in decisions["no_pair_because"].items() if count]
    reasons = ", ".join(  # "4 parents had one action, 1 had every action at the same Q"
        f"{count if index else plural(count, 'parent')} "
        f"{NO_PAIR_BECAUSE.get(name, name.replace('_', ' '))}"
        for index, (name, count) in enumerate(counted))
    line = f"decisions: {decisions['seen']} seen, {decisions['with_pair']} with a pair"
    if reasons:
        line += f"; {reasons}"
    if "actions_differ" in decisions:
        differ = decisions["actions_differ"]
        line += (f"; where the actions' exact scores differ: {differ['with_pair']} of "
                 f"{differ['seen']} with a pair")
    return line


def rollout_batch(models: tuple[str | None, ...], workers: int, parallel: int) -> int | None:
    """How many model calls of one process may share one batched generate: every
    simulation in flight (``workers`` tasks x ``parallel`` each), when a local model (hf:,
    tiny) answers them (--model, or the deciding --policy-model; EnvSpec batches only the
    local ones); None, one generate per call, otherwise. A Ray worker process searches one
    task at a time, so there ``workers`` is 1."""
    from stepwise.agents.environments import BATCHED_SCHEMES

    in_flight = workers * parallel
    local = any(uri and uri.partition(":")[0] in BATCHED_SCHEMES for uri in models)
    return in_flight if local and in_flight > 1 else None


def _kwargs_for(uri: str, model_name: str | None, calls: CallOptions) -> dict:
    """The constructor kwargs that bound this model's calls (built once here to see which
    options its backend takes; every worker builds its own from the spec)."""
    from stepwise.llm import from_uri

    return call_kwargs(uri, from_uri(uri, **({"model_name": model_name} if model_name else {})),
                       calls)


def _explore_here(spec, task_ids, options, out_dir, workers, pair_options, simulated,
                  factory=None, stop=None):
    """Tasks in a thread pool on this machine, with a bar of simulations that a resumed run
    starts where the earlier sessions left it."""
    from stepwise.search.run import explore_tasks, simulations_done

    make_env, cached = factory or spec.factory()
    lock = threading.Lock()
    started = time.perf_counter()
    done = [0]
    with progress_bar("simulations") as progress:
        total = None if options.per_step else len(task_ids) * options.simulations  # unknown
        bar = progress.add_task("exploring", total=total, detail="",
                                completed=simulations_done(out_dir, task_ids, options))

        def on_iteration(task_id: str, iteration: int) -> None:
            with lock:
                done[0] += 1
                rate = done[0] / max(time.perf_counter() - started, 1e-9)
                counts = cached.counts
                progress.update(bar, advance=1, description=f"exploring {task_id}",
                                detail=f"{rate:.1f} sim/s · calls {counts['calls']} · "
                                     f"saved {counts['saved']}")

        def on_failure(task_id: str, line: str) -> None:
            progress.console.print(f"[red]failed:[/red] {escape(task_id)}: {escape(line)}",
                                   highlight=False, emoji=False, soft_wrap=True)

        return explore_tasks(task_ids, make_env, options, out_dir, env_name=spec.env,
                             workers=workers, on_iteration=on_iteration,
                             pair_options=pair_options, model_counts=lambda: cached.counts,
                             simulated=simulated, on_failure=on_failure, stop=stop)


def _explore_on_ray(spec, task_ids, options, out_dir, address, pair_options, simulated):
    """One Ray task per search task, with a bar of tasks."""
    from stepwise.search.distributed import explore_tasks_ray

    with progress_bar("tasks") as progress:
        bar = progress.add_task("exploring (ray)", total=len(task_ids))
        return explore_tasks_ray(spec, task_ids, options, out_dir, address=address,
                                 env_name=spec.env, pair_options=pair_options,
                                 on_task_done=lambda task: progress.update(
                                     bar, advance=1, description=f"done {task}"),
                                 simulated=simulated)
