"""``stepwise think``: run the think-as-tool agent on a request or a world task, or evaluate it."""

from __future__ import annotations

import json
import shlex
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from rich.markup import escape
from rich.text import Text

from stepwise.checkpoints import DEFAULT_CHECKPOINTS
from stepwise.cli.common import (
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    ModelNameOpt,
    RepetitionPenaltyOpt,
    SeedOpt,
    TaskFailures,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    app,
    cli_errors,
    err,
    hold_threads,
    max_tokens_option,
    model_from_uri,
    out,
    progress_bar,
    state,
    warn,
)
from stepwise.cli.tables import Column, ReadableTable, Row, number
from stepwise.cli.wording import plural
from stepwise.errors import ConfigError, StepwiseError

SIMULATED = "[yellow](simulated world)[/yellow]"
KIND_NAMES = {"refusal": "refusals", "change": "must change something"}  # evaluate.KINDS
MAX_TOKENS = 512  # an agent turn: a tool call or a short answer
THINK_TOKENS = 384  # a thought from a --think-model
MaxTokensOpt = max_tokens_option(MAX_TOKENS, f"an agent turn is a tool call or a short answer; "
                                 f"a --think-model's thoughts get {THINK_TOKENS}")


def _names(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def resume_line(thread: str, model: str, model_name: str | None, think_model: str | None,
                checkpoints: Path, answer: bool = False) -> str:
    """The command that goes on with ``thread``: the run's settings are in its checkpoints,
    the models are not."""
    args = ["stepwise", "think", "--resume", thread, *(["--answer", "..."] if answer else []),
            "--model", model, *(["--model-name", model_name] if model_name else []),
            *(["--think-model", think_model] if think_model else []),
            "--checkpoints", str(checkpoints)]
    return shlex.join(args)


def show_step(node: str, update: dict[str, Any], think_names: set[str]) -> None:
    """One line per model turn, tool result and human reply, as the run goes."""
    for thought in update.get("thoughts") or []:
        if thought["tool"] == "native":
            err.print(f"[dim]  (reasoning) {escape(thought['thought'][:300])}[/dim]",
                      highlight=False, emoji=False)
    for message in update.get("messages") or []:
        if isinstance(message, AIMessage):
            if message.text:
                err.print(f"[bold]assistant:[/bold] {escape(message.text[:500])}",
                          highlight=False, emoji=False)
            for call in message.tool_calls:
                args = json.dumps(call["args"], ensure_ascii=False)[:300]
                colour = "magenta" if call["name"] in think_names else "cyan"
                err.print(f"  [{colour}]→ {escape(call['name'])}[/{colour}] {escape(args)}",
                          highlight=False, emoji=False)
            for call in message.invalid_tool_calls:
                err.print(f"  [red]→ malformed call[/red] {escape(str(call.get('args'))[:200])}",
                          highlight=False, emoji=False)
        elif isinstance(message, ToolMessage):
            colour = "red" if message.status == "error" else "green"
            text = " ".join(message.text.split())[:300]
            err.print(f"    [{colour}]← {escape(str(message.name))}[/{colour}] {escape(text)}",
                      highlight=False, emoji=False)
        elif isinstance(message, HumanMessage) and node == "human":
            err.print(f"[bold]human:[/bold] {escape(message.text[:300])}", highlight=False,
                      emoji=False)


@app.command()
@cli_errors
def think(
    request: Annotated[str | None, typer.Argument(help="What to ask the agent.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model URI: sim:<world>, "
                                       "replay:<cassette>, openai:<base_url>, hf:<path>, tiny."
                                       )] = "",
    model_name: ModelNameOpt = None,
    world: Annotated[str | None, typer.Option(help="A policy world to act in: airline "
                                              "(a simulation).")] = None,
    task: Annotated[str | None, typer.Option(help="A task of the world; its request is "
                                             "the user's message and its end state is checked.")
                    ] = None,
    tools: Annotated[str | None, typer.Option(help="Only these world tools, comma-separated."
                                              )] = None,
    think_tools: Annotated[str, typer.Option(help="Think tools, comma-separated: think, plan, "
                                             "reflect, verify, or paths of prompt files.")
                           ] = "think",
    think_prompts: Annotated[Path | None, typer.Option(help="A folder of NAME.md prompt files "
                                                       "that override the shipped ones.")] = None,
    think_model: Annotated[str | None, typer.Option(help="Model URI the prompt-defined think "
                                                    "tools use (default: the agent's model).")
                           ] = None,
    think_budget: Annotated[int | None, typer.Option(min=0, help="Most think calls per run.")
                            ] = None,
    think_tokens: Annotated[int | None, typer.Option(min=0, help="Most think tokens per run.")
                            ] = None,
    thinking: Annotated[bool | None, typer.Option("--thinking/--no-thinking", help="Turn the "
                                                  "backend's native thinking on or off.")] = None,
    thinking_budget: Annotated[int | None, typer.Option(min=1, help="Native thinking-token "
                                                        "budget (vLLM).")] = None,
    ask_human: Annotated[bool, typer.Option(help="Give the agent an ask_human tool; after 3 "
                                            "tool errors in a row it asks you too.")] = False,
    max_turns: Annotated[int, typer.Option(min=1, help="Most model turns per run.")] = 20,
    checkpoints: Annotated[Path, typer.Option(help="SQLite file of run checkpoints.")
                           ] = DEFAULT_CHECKPOINTS,
    thread: Annotated[str | None, typer.Option(help="Thread id for a new run "
                                               "(default: a fresh one).")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume the run with this thread id "
                                               "(after a kill, or with --answer); it keeps the "
                                               "settings it was started with.")] = None,
    answer: Annotated[str | None, typer.Option(help="Your answer to a run waiting for a human."
                                               )] = None,
    evaluate: Annotated[bool, typer.Option("--eval", help="Run every task of --world and "
                                           "report success rate, pass^k and think rate.")] = False,
    trials: Annotated[int, typer.Option(min=1, help="Trials per task with --eval (pass^k).")] = 1,
    tasks: Annotated[str | None, typer.Option(help="Only these task ids with --eval.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of tables.")
                       ] = False,
    record_to: Annotated[Path | None, typer.Option(
        "--record", help="Write every model answer to this cassette, to replay later with "
        "--model replay:FILE (think tools using the agent's model included).")] = None,
    max_tokens: MaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run the think-as-tool agent: thinking is a set of tools the model calls when it decides to.

    Examples:

      [bold]stepwise think --world airline --task cancel-insured --model sim:airline-oracle[/bold]

      [bold]stepwise think "Plan a 3-day trip" --model openai:http://localhost:8000/v1
      --model-name Qwen/Qwen3-8B --think-tools think,plan --think-budget 3[/bold]

      [bold]stepwise think --eval --world airline --model tiny --trials 2 --json[/bold]

    Runs keep checkpoints in an SQLite file; a killed run goes on with --resume THREAD
    (a new run prints its thread id and that command on stderr before its first step).
    With --eval, a task whose run fails (a server timing out, say) is reported and the
    others go on; the exit status is then 1.
    """
    hold_threads(threads)
    from stepwise.agents.think.options import ThinkOptions

    if not model:
        raise ConfigError("give a model with --model (e.g. --model tiny, or sim:airline-oracle "
                          "for the scripted airline simulation)")
    if answer is not None and not resume:
        raise ConfigError("--answer goes with --resume THREAD (the run waiting for it)")
    if (task or evaluate) and not world:
        raise ConfigError("--task and --eval need --world (e.g. --world airline)")
    options = ThinkOptions(
        think_tools=_names(think_tools) or [], think_prompts=str(think_prompts) if think_prompts
        else None, think_budget=think_budget, think_tokens=think_tokens,
        enable_thinking=thinking, thinking_token_budget=thinking_budget, ask_human=ask_human,
        max_turns=max_turns, tools=_names(tools))
    if evaluate and (request or task or resume):
        raise ConfigError("--eval runs every task; leave out the request, --task and --resume")
    if evaluate and ask_human:
        raise ConfigError("--eval runs unattended; leave out --ask-human")
    if resume and (request or task):
        raise ConfigError("--resume goes on with a run; leave out the request and --task")
    if not (evaluate or resume or request or task):
        raise ConfigError("give a request, --task ID (with --world), --resume THREAD or --eval")
    calls = CallOptions.from_cli(MAX_TOKENS, max_tokens, timeout, temperature, seed,
                                 repetition_penalty, device, dtype)
    session = Session(model_from_uri(model, model_name, calls),
                      model_from_uri(think_model, model_name, calls.capped(THINK_TOKENS))
                      if think_model else None,
                      checkpoints, must_exist=bool(resume))
    if record_to is not None:
        session.record(record_to, model)
    if evaluate:
        _evaluate(session, options, world or "", trials, _names(tasks), model, as_json)
        return

    def again(thread_id: str, answer: bool = False) -> str:
        return resume_line(thread_id, model, model_name, think_model, checkpoints, answer)

    if resume:
        run, episode = session.resume(resume, answer)
    else:
        def announce(thread_id: str) -> None:  # even under --quiet: what a killed run needs
            err.print(f"thread {thread_id}; if the run stops early, resume with: "
                      f"{again(thread_id)}", highlight=False, markup=False, emoji=False,
                      soft_wrap=True)

        run, episode = session.start(options, request, world, task, thread, announce)
    while run.status == "waiting_for_human" and not as_json and sys.stdin.isatty():
        reply = typer.prompt(f"the agent asks: {run.waiting_for.get('question')}")
        run, episode = session.resume(run.thread_id, reply)
    _report(run, episode, again, as_json)


class Session:
    """One command's models and checkpoints; starts and resumes runs, world included."""

    def __init__(self, chat, thinker, checkpoints: Path, must_exist: bool) -> None:
        if must_exist and not checkpoints.is_file():
            raise StepwiseError(f"no checkpoints at {checkpoints} (give the --checkpoints file "
                                "the run was started with)")
        self.chat, self.thinker, self.checkpoints = chat, thinker, checkpoints
        self._saver = None

    @property
    def saver(self):
        """The SQLite checkpointer, opened once, on first use (evaluations never need it)."""
        from stepwise.checkpoints import sqlite_checkpointer

        if self._saver is None:
            self._saver = sqlite_checkpointer(self.checkpoints)
        return self._saver

    def record(self, cassette: Path, source: str) -> None:
        from stepwise.llm.replay import record

        if cassette.is_dir() or not cassette.parent.is_dir():
            raise ConfigError(f"--record {cassette}: give a file in an existing folder")
        self.chat = record(self.chat, str(cassette), source=source)

    def agent(self, options, episode):
        agent = options.build(self.chat, episode.tools if episode else [],
                              episode.policy if episode else "", think_model=self.thinker,
                              checkpointer=self.saver)
        names = set(agent.steps.think_tools)
        self.on_step = None if state["quiet"] else (lambda node, update:
                                                    show_step(node, update, names))
        return agent

    def start(self, options, request, world, task, thread: str | None,
              announce: Callable[[str], None]):
        """A new run; ``announce`` hears its thread id once it is set up, before any step."""
        from stepwise.agents.think.worlds import open_episode

        episode = open_episode(world, task, options.tools) if world else None
        agent = self.agent(options, episode)
        thread = thread or uuid.uuid4().hex[:12]
        announce(thread)
        run = agent.run(request or episode.request, thread_id=thread, on_step=self.on_step,
                        metadata={"world": world, "task": task,
                                  "options": options.model_dump_json()})
        return run, episode

    def resume(self, thread, answer):
        """Go on with a run under the settings it was started with, its world rebuilt."""
        from stepwise.agents.think.agent import saved_run
        from stepwise.agents.think.options import ThinkOptions
        from stepwise.agents.think.worlds import open_episode

        metadata, messages = saved_run(self.saver, thread)
        # Checkpoint metadata keeps only plain values, so the options travel as JSON.
        options = ThinkOptions.model_validate_json(metadata.get("options") or "{}")
        world = metadata.get("world")
        episode = open_episode(world, metadata.get("task"), options.tools) if world else None
        if episode is not None:
            episode.restore(messages)
            if not state["quiet"]:
                err.print(f"[dim]rebuilt the {world} world from {episode.restored_calls} "
                          "checkpointed tool calls[/dim]")
        run = self.agent(options, episode).resume(thread, answer, on_step=self.on_step)
        return run, episode


def _report(run, episode, again: Callable[..., str], as_json: bool) -> None:
    final = run.status not in ("running", "waiting_for_human")
    check = episode.check() if episode and final else None
    if as_json:
        out.print_json(json.dumps({
            "thread_id": run.thread_id, "status": run.status, "answer": run.answer,
            "metrics": run.metrics.as_dict(), "thoughts": [dict(t) for t in run.thoughts],
            "waiting_for": run.waiting_for,
            "task": None if check is None else {"id": episode.task.id, "simulated": True, **check},
        }, ensure_ascii=False))
    else:
        if run.answer:
            out.print(run.answer, highlight=False, markup=False)
        err.print(f"[dim]{run.status}; {run.metrics.summary()}[/dim]")
        if run.status == "waiting_for_human":
            err.print(f"waiting for a human: {escape(str(run.waiting_for.get('question')))}\n"
                      f"answer with: {escape(again(run.thread_id, answer=True))}")
        elif run.status == "running":
            err.print(f"[dim]resume with: {escape(again(run.thread_id))}[/dim]")
        if check is not None:
            verdict = "[green]success[/green]" if check["success"] else "[red]FAIL[/red]"
            err.print(f"task {episode.task.id}: {verdict} {SIMULATED}")
            for line in check["differences"]:
                err.print(f"  {line}", highlight=False, markup=False, emoji=False)
    warning = run.metrics.no_tool_calls_warning() if final else None
    if warning:
        warn(warning)
    failed = run.status in ("too_many_errors", "turn_limit") or (check and not check["success"]
                                                                 and run.status == "answered")
    if failed:
        raise typer.Exit(1)


def eval_table(report, world: str, trials: int, label: str) -> ReadableTable:
    """One row per task, in a section per kind with its subtotal: refusals apart, since an
    agent that does nothing passes them."""
    rows: list[Row] = []
    for kind, score in report.by_kind.items():
        of_kind = [o for o in report.outcomes if o.kind == kind]
        for task in dict.fromkeys(o.task for o in of_kind):
            runs = [o for o in of_kind if o.task == task]
            turns = sum(o.metrics["turns"] for o in runs)
            think = sum(o.metrics["think_turns"] for o in runs)
            rows.append(Row((task, f"{sum(o.success for o in runs)}/{len(runs)}",
                             ", ".join(sorted({o.status for o in runs})), int(turns),
                             f"{think / turns:.2f}" if turns else "-",
                             int(sum(o.metrics["tool_errors"] for o in runs)))))
        rows.append(Row((f"{KIND_NAMES[kind]}: {score.success_rate:.3f}",
                         f"{sum(o.success for o in of_kind)}/{len(of_kind)}", "", "", "", ""),
                        style="bold", end_section=True))
    title = Text.from_markup(f"{escape(world)} tasks, {plural(trials, 'trial')} each, model "
                             f"{escape(label)} {SIMULATED}")
    return ReadableTable([Column("task", wrap=False), number("passed"), "status",
                          number("turns"), number("think rate"), number("tool errors")],
                         rows, title=title)


def _evaluate(session, options, world, trials, tasks, label, as_json) -> None:
    from stepwise.agents.think.evaluate import evaluate
    from stepwise.agents.think.worlds import task_ids

    chosen = tasks or task_ids(world)
    unknown = sorted(set(chosen) - set(task_ids(world)))
    if unknown:
        raise ConfigError(f"unknown {world} task {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(task_ids(world))})")
    with progress_bar("trials", transient=False, disable=as_json or state["quiet"]) as progress:
        bar = progress.add_task(f"{world} tasks (simulated)", total=len(chosen) * trials)
        failures = TaskFailures("task trial")

        def done(outcome) -> None:
            if outcome.error is not None:
                failures.add(f"{outcome.task} (trial {outcome.trial})", outcome.error)
            progress.advance(bar)

        report = evaluate(session.chat, options, world=world, trials=trials, tasks=chosen,
                          model_label=label, think_model=session.thinker, on_done=done)
    for line in report.warnings:
        warn(line)
    failed_tasks = sorted({o.task for o in report.outcomes if o.error is not None})
    rerun = f"rerun them with --tasks {','.join(failed_tasks)}"
    if as_json:
        out.print_json(report.model_dump_json())
        failures.exit_if_any(len(report.outcomes), rerun)
        return
    out.print(eval_table(report, world, trials, label))
    passes = "  ".join(f"pass^{k} {v:.3f}" for k, v in report.pass_hat_k.items())
    kinds = ", ".join(f"{KIND_NAMES[kind]} {score.success_rate:.3f} over "
                      f"{plural(score.tasks, 'task')}" for kind, score in report.by_kind.items())
    metrics = report.metrics
    out.print(f"success rate {report.success_rate:.3f} ({kinds})  {passes}  think rate "
              f"{report.think_rate:.3f}  {plural(int(metrics['tool_calls']), 'tool call')} in "
              f"{plural(int(metrics['turns_with_tools']), 'turn')} with tools  tokens "
              f"{int(metrics['tokens_in'])} in, {int(metrics['tokens_out'])} out"
              f"  {SIMULATED}")
    failures.exit_if_any(len(report.outcomes), rerun)
