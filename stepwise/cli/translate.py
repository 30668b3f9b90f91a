"""``stepwise translate``: the LongMT agent over a document, a folder or a dataset.

Writes, per policy and document: the translation (``<doc>.<tgt>``, one line per source
line), the step trace (``<doc>.trace.jsonl``, one object per page), the memory at the
end (``<doc>.memory.json``) and, with references, scores; and ``scores.json`` over all.
Finished documents are kept: a rerun with the same settings picks up where a killed run
stopped; one with other settings is refused, naming the document and the first setting
that differs (``--fresh`` redoes them). A document whose model call failed on a page keeps the
trace up to that page step in ``<doc>.failed.trace.jsonl`` and is redone by a rerun.
The run itself is ``stepwise.agents.longmt.runs``; here are its options, models and output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from rich.text import Text

from stepwise.agents.environments import Decide
from stepwise.cli.common import (
    DECISION_TOKENS,
    LONGMT_MAX_TOKENS,
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    LongMTMaxTokensOpt,
    ModelNameOpt,
    ModelOpt,
    PageSentencesOpt,
    RepetitionPenaltyOpt,
    SeedOpt,
    TaskFailures,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    ToolChoiceOpt,
    app,
    cli_errors,
    decision_choice,
    generates,
    hold_threads,
    model_from_uri,
    out,
    progress_bar,
    warn,
)
from stepwise.cli.tables import Column, ReadableTable, number
from stepwise.errors import StepwiseError
from stepwise.run_lock import lock_run

if TYPE_CHECKING:
    from stepwise.agents.longmt.policies import Oracle
    from stepwise.documents.sources import SourceDocument

SIMULATED_NOTE = ("simulated: a synthetic world's translator, not a language model; these "
                  "figures show the agent's plumbing, not translation quality")
AUTO_POLICY_MODEL = "auto@policy-model"  # the row of auto decided by --policy-model
DECIDE_MODES = get_args(Decide)  # the page steps' own, from the environments' set

DecideOpt = Annotated[Decide, typer.Option(
    "--decide", help="How the deciding model decides a page's modules under auto: generate "
    "(its own tool calls, or the no-modules reply; other prose is a fallback) or rank (the "
    "eight module sets' exported steps scored by their log-likelihood after the decision "
    "prompt, the best taken; needs an hf: or tiny model) or reward (ranked the same way by "
    "DPO's implicit reward: a --policy-model trained by stepwise train dpo, less the model "
    "it was trained from; what DPO trains). With --policy-model it applies to that model's "
    "row; --compare's plain auto row generates.")]


def _table(rows: dict[str, dict], simulated: bool) -> ReadableTable:
    title = "LongMT policies" + (" [yellow](simulated world)[/yellow]" if simulated else "")
    columns: tuple[str, ...] = ("bleu", "d_bleu", "chrf", "context_tokens", "module_calls",
                                "tokens")
    if any(row.get("fallbacks") for row in rows.values()):
        columns += ("fallbacks",)
    if any(row.get("failed_documents") for row in rows.values()):
        columns += ("failed_documents",)
    if any("decisions_by_tool_call" in row for row in rows.values()):
        columns += ("decisions_by_tool_call", "decisions_by_text")
    cells = []
    for policy, row in rows.items():
        row = {**row, "failed_documents": len(row.get("failed_documents", {}))}  # not scored
        cells.append([policy, *(f"{row[c]:.2f}" if isinstance(row.get(c), float)
                                else row.get(c) for c in columns)])
    return ReadableTable([Column("policy", wrap=False),
                          *(number(c.replace("_", " ")) for c in columns)], cells,
                         title=Text.from_markup(title))


@app.command()
@cli_errors
def translate(
    document: Annotated[Path, typer.Argument(help="A text file (one sentence or paragraph per "
                                             "line), a folder of *.<src> files, a dataset "
                                             ".jsonl, or a folder holding dataset.jsonl "
                                             "(stepwise sim make --out).")],
    model: ModelOpt,
    src: Annotated[str | None, typer.Option(help="Source language code (not needed for a "
                                            "dataset whose rows say it).")] = None,
    tgt: Annotated[str | None, typer.Option(help="Target language code.")] = None,
    policy: Annotated[str, typer.Option(help="Memory modules per page: none, all, "
                                        "only:<module>, auto, fixed:<sets>, oracle (a "
                                        "simulated world's exact best set), markers (its "
                                        "marker heuristic). Modules: summaries, pages, "
                                        "entities.")] = "none",
    compare: Annotated[str | None, typer.Option(help="Several policies, comma-separated "
                                                "(e.g. none,all,auto,oracle): run each and "
                                                "print the compare table.")] = None,
    policy_model: Annotated[str | None, typer.Option(help="The model that decides the "
                                                     "modules under auto, e.g. hf:DIR from "
                                                     "stepwise train dpo (default: --model). "
                                                     "With --compare, auto runs both ways: "
                                                     "'auto' (--model decides) and "
                                                     f"'{AUTO_POLICY_MODEL}'.")] = None,
    policy_fallback: Annotated[str, typer.Option(help="The modules a page gets when the "
                                                 "deciding model's answer is unusable (no "
                                                 "tool call could be run, empty, prose "
                                                 "other than the no-modules reply, or the "
                                                 "call failed), e.g. none or "
                                                 "entities+summaries; counted as fallbacks.")] = "none",
    model_name: ModelNameOpt = None,
    page_sentences: PageSentencesOpt = 10,
    max_chars: Annotated[int | None, typer.Option(min=1, help="Most characters per page."
                                                  )] = None,
    adjust_pages: Annotated[bool, typer.Option(help="Let the policy model move each page "
                                               "break by a few sentences after paging.")] = False,
    ref: Annotated[Path | None, typer.Option(help="Reference translation of a single "
                                             "document, for scores.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where translations, traces, memory "
                                          "and scores go.")] = Path("translations"),
    fresh: Annotated[bool, typer.Option(help="Redo documents already finished in --out "
                                        "(also those made with other settings).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object "
                                          "{policy: {metric: value}}.")] = False,
    max_tokens: LongMTMaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    tool_choice: ToolChoiceOpt = None,
    decide: DecideOpt = "generate",
    threads: ThreadsOpt = None,
) -> None:
    """Translate page by page with summary, page and entity memory (LongMT).

    Per page the policy decides which memory modules to call (view_summaries, view_pages,
    lookup_entities); then the page is translated and memory updated. A document whose
    model call fails (a server timing out, or answering garbage past its retries) is
    reported with the page step, its trace so far kept in DOC.failed.trace.jsonl, and the
    others go on; the exit status is then 1, and a rerun redoes only the failed ones.

    Examples:
      [bold]stepwise sim make --world translation --docs 6 --seed 0 --out synth[/bold]
      [bold]stepwise translate synth/dataset.jsonl -m sim:translator --compare none,all,auto,oracle[/bold]
      [bold]stepwise translate doc0.en --src en --tgt zh -m openai:http://localhost:8000/v1 --model-name Qwen2.5-7B-Instruct --policy auto --ref doc0.zh[/bold]
    """
    hold_threads(threads)
    from stepwise.agents.longmt import LongMTAgent, Policy
    from stepwise.agents.longmt.policies import module_set
    from stepwise.agents.longmt.runs import (
        LOCK_NAME,
        DocumentDone,
        compare_policies,
        page_documents,
    )
    from stepwise.documents.sentences import language_family
    from stepwise.documents.sources import load_documents
    from stepwise.scoring.languages import tokenizer_for
    from stepwise.sim.translation.translator import check_translatable

    policies = [Policy.parse(p) for p in (compare.split(",") if compare else [policy])]
    module_set(policy_fallback)
    labels = {p.text: p.text for p in policies}  # row label -> policy text
    if policy_model and "auto" in labels:
        ranked = AUTO_POLICY_MODEL + (f"({decide})" if decide != "generate" else "")
        if compare:  # both rows: the translator deciding, and the policy model deciding
            labels[ranked] = "auto"
        else:
            labels = {ranked: "auto"}
    docs = load_documents(document, src=src, tgt=tgt, ref=ref)
    for doc in docs:
        language_family(doc.src_lang)
        tokenizer_for(doc.tgt_lang)
    if any(p.needs_world for p in policies) and not all(d.world for d in docs):
        raise StepwiseError("the oracle and markers policies need a world that knows each "
                            "page's best modules: use a dataset from stepwise sim make")
    calls = CallOptions.from_cli(LONGMT_MAX_TOKENS, max_tokens, timeout, temperature, seed,
                                 repetition_penalty, device, dtype)
    translator = model_from_uri(model, model_name, calls,
                                **decision_choice(model, tool_choice, policy_model is None))
    decider = model_from_uri(policy_model, model_name, calls,
                             **decision_choice(policy_model, tool_choice)) if policy_model else None
    if decide == "reward":
        decider = _implicit_reward(decider, policy_model, model_name, calls)
    simulated = model.startswith("sim:")
    decision_tokens = calls.capped(DECISION_TOKENS).max_tokens

    def deciding(label: str) -> Any:
        return decider if label.startswith(AUTO_POLICY_MODEL) else None

    def decide_for(label: str) -> str:  # --decide is the policy model's, when there is one
        return decide if decider is None or deciding(label) is not None else "generate"

    for label, text in labels.items():  # a model that cannot rank fails before any page
        if text == "auto" and decide_for(label) in ("rank", "reward"):
            from stepwise.llm.ranking import ranker

            ranker(deciding(label) or translator)
    check_translatable(model, docs)  # real text with the simulated translator: before any page

    agents = {label: LongMTAgent(
        translator, policy=text, policy_model=deciding(label),
        page_sentences=page_sentences, max_chars=max_chars, adjust_pages=adjust_pages,
        fallback=policy_fallback,
        decision_max_tokens=decision_tokens if generates(deciding(label) or translator)
        else None,
        translation_max_tokens=calls.max_tokens if generates(translator) else None,
        decide=decide_for(label))
        for label, text in labels.items()}
    pages = page_documents(next(iter(agents.values())), docs)
    total = sum(len(d.pages) for d in pages.values()) * len(agents)
    settings = {label: {
        "model": model, "model_name": model_name, "policy": agent.policy.text,
        "policy_model": policy_model if agent.policy_model else None,
        "policy_fallback": policy_fallback, "page_sentences": page_sentences,
        "max_chars": max_chars, "adjust_pages": adjust_pages,
        # what changes the answers (a timeout does not)
        "calls": {k: v for k, v in calls.values().items() if k != "timeout"},
        **({"decide": agent.decide} if agent.policy.decides and agent.decide != "generate"
           else {})} for label, agent in agents.items()}
    failures = TaskFailures("document")
    with lock_run(out_dir, LOCK_NAME, "translate", "wait for it to finish or use another --out",
                  shared_in_thread=True), progress_bar("pages", disable=as_json) as progress:
        task = progress.add_task("translating", total=total)

        def started(label: str, doc_id: str) -> None:
            progress.update(task, description=f"{label} · {doc_id}")

        def finished(done: DocumentDone) -> None:
            if done.exc is not None:
                failures.record(f"{done.label} · {done.document.id}", done.exc)
            if done.result is None:  # kept or failed: its pages not run count as done
                progress.advance(task, done.pages - done.pages_run)

        rows = compare_policies(agents, docs, out_dir, settings=settings, fresh=fresh,
                                simulated=simulated, pages=pages, oracle_for=_world_oracle,
                                on_start=started, on_page=lambda *_: progress.advance(task),
                                on_document=finished).rows
    for label, row in rows.items():
        if row.get("turns_with_tools") and not row.get("tool_calls"):
            warn(f"{label}: the model made no tool calls in {row['turns_with_tools']} decision "
                 "turns with the memory tools bound (every page was decided by prose or "
                 "fallback): its chat template or server may not be passing tool schemas")
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
    else:
        out.print(_table(rows, simulated))
        if simulated:
            out.print(f"[yellow]{SIMULATED_NOTE}[/yellow]")
        out.print(f"translations, step traces and memory in {out_dir}/")
    failures.exit_if_any(len(docs) * len(agents))


def _implicit_reward(decider: Any, policy_model: str | None, model_name: str | None,
                     calls: CallOptions) -> Any:
    """``--decide reward``: the trained policy model against the model it was trained from."""
    from stepwise.llm.implicit_reward import ImplicitReward, trained_from

    if decider is None or policy_model is None:
        raise StepwiseError("--decide reward ranks a trained --policy-model against the model "
                            "it was trained from: give --policy-model hf:DIR (a stepwise "
                            "train dpo output)")
    reference = trained_from(policy_model)
    return ImplicitReward(decider, model_from_uri(reference, model_name, calls))


def _world_oracle(doc: SourceDocument) -> Oracle | None:
    """A simulated world's knowledge of a document's pages (exact best modules), or None."""
    world, ref = doc.world, doc.ref
    if world is None:
        return None
    if world != "translation":
        raise StepwiseError(f"unknown world {world!r} in the dataset (known: translation)")
    from stepwise.sim.translation.oracle import WorldOracle

    return WorldOracle(ref) if ref is not None else None
