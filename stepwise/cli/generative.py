"""``stepwise simulate``, ``stepwise interview``, ``stepwise memory``: generative agents in
the simulated sandbox world (Park et al. 2023).

A run directory (``--out``) holds one SQLite file with the world and every agent's
memory stream, and ``steps.jsonl``; a run stops after ``--steps`` (or a kill, keeping its
last whole step) and goes on with ``--resume``. One ``simulate`` writes a run at a time;
``interview`` and ``memory`` read a snapshot, also while it runs. Offline by default: the
model is ``sim:townsfolk`` (a rule-based simulation) and embeddings are the bundled
all-MiniLM-L6-v2. ``simulate`` ends with what the run cost (requests, tokens, wall time per
agent and game hour; ``costs.json``) and, for a world with events, the paper's measures
(diffusion, density over conversations, attendance; ``metrics.json``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from rich.markup import escape

from stepwise.cli.common import (
    CallOptions,
    DeviceOpt,
    DtypeOpt,
    ModelNameOpt,
    RepetitionPenaltyOpt,
    SeedOpt,
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
)
from stepwise.cli.tables import Column, ReadableTable, Row, number
from stepwise.cli.wording import plural
from stepwise.errors import StepwiseError
from stepwise.files import write_atomic

if TYPE_CHECKING:
    from stepwise.memory.stream import RetrievedMemory

DEFAULT_MODEL = "sim:townsfolk"
MAX_TOKENS = 256  # a plan, a reflection or an utterance is a few sentences
MaxTokensOpt = max_tokens_option(MAX_TOKENS, "a plan, a reflection or an utterance is a few "
                                 "sentences")
EMBEDDINGS: Embeddings | None = None  # the bundled MiniLM; tests put cheaper vectors here
SIMULATED_NOTE = "a simulated world: its agents, places and events are fictional"
COSTS_FILE = "costs.json"
METRICS_FILE = "metrics.json"

SERVER_CONCURRENCY = 8  # agents thinking at once against a server (openai:) by default

SimModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="Model URI: sim:townsfolk (a rule-based simulation, the default), "
    "replay:<cassette>, openai:<base_url>, hf:<path>.")]
RunArg = Annotated[Path, typer.Argument(help="A run directory made by stepwise simulate.")]
AgentArg = Annotated[str, typer.Argument(help="An agent's full name, e.g. 'Maria Lopez'.")]
KOpt = Annotated[int, typer.Option("--k", min=1, help="How many memories to retrieve.")]


def run_embeddings() -> Embeddings | None:
    """The embedding model of runs made here: None is the memory stream's default, the
    bundled all-MiniLM-L6-v2 (real, offline), loaded when first needed."""
    return EMBEDDINGS


def bundled_worlds() -> list[str]:
    """The names of the worlds shipped with stepwise (``party``, ``smallville``)."""
    folder = resources.files("stepwise.sim.sandbox").joinpath("data")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir()
                  if p.name.endswith(".json"))


def world_file(world: str) -> Path:
    """A WORLD.json path, or the name of a bundled world (``party``, ``smallville``)."""
    path = Path(world)
    if path.exists() or path.suffix:
        return path
    bundled = resources.files("stepwise.sim.sandbox").joinpath("data", f"{world}.json")
    if bundled.is_file():
        return Path(str(bundled))
    raise StepwiseError(f"no world file {world!r} and no bundled world of that name "
                        f"(bundled: {', '.join(bundled_worlds())})")


def steps_done(first: int, after: int) -> str:
    """What a session did, from the run's step number before and after it: the log numbers
    steps from 0, so a session taking 6 steps from a new run took steps 0-5."""
    taken = after - first
    if taken <= 0:
        return f"no steps taken (the run has taken {plural(first, 'step')})"
    numbers = f"step {first}" if taken == 1 else f"steps {first}-{after - 1}"
    return f"{plural(taken, 'step')} done ({numbers})"


def step_line(entry: dict) -> str:
    agents = "; ".join(f"{name.split()[0]}: {a['action'] or 'idle'} @ {a['location']}"
                       for name, a in entry["agents"].items())
    notes = [f"{name.split()[0]} {note}" for name, note in entry["notes"].items() if note]
    return f"step {entry['step']} {entry['time'][11:]}  {agents}" + (
        f"  [bold]({'; '.join(notes)})[/bold]" if notes else "")


@app.command()
@cli_errors
def simulate(
    world: Annotated[str, typer.Argument(help="A WORLD.json file, or a bundled town: 'party' "
                                         "(3 agents, a Valentine's Day party) or "
                                         "'smallville' (25 agents, the party and a mayoral "
                                         "candidacy).")],
    steps: Annotated[int, typer.Option("--steps", "-n", min=0, help="World steps to take "
                                       "(one step lasts the world clock's minutes_per_step "
                                       "or seconds_per_step, or --step-seconds).")],
    model: SimModelOpt = DEFAULT_MODEL,
    model_name: ModelNameOpt = None,
    run_dir: Annotated[Path, typer.Option("--out", "-o", help="The run directory.")] = Path(
        "simulation"),
    resume: Annotated[bool, typer.Option("--resume", help="Go on with the run in --out "
                                         "(start it when there is none).")] = False,
    radius: Annotated[float, typer.Option(min=0, help="Perception radius in map units "
                                          "(new runs).")] = 2.0,
    max_turns: Annotated[int, typer.Option(min=1, help="Most utterances per conversation "
                                           "(new runs).")] = 6,
    threshold: Annotated[int, typer.Option(min=1, help="Summed importance that triggers "
                                           "reflection (new runs; 150 in the paper).")] = 150,
    step_seconds: Annotated[int | None, typer.Option(
        "--step-seconds", min=1, help="New runs: the game seconds one step lasts, in place "
        "of the world file's clock (10 in the paper: 8640 steps a day).")] = None,
    mechanisms: Annotated[str, typer.Option(help="New runs: 'paper' (area-tree walk, object "
                                            "states, summaries, re-planning) or 'basic' "
                                            "(the simpler loop).")] = "paper",
    record_to: Annotated[Path | None, typer.Option(
        "--record", help="Write every model answer to this cassette; replay the run with "
        "--model replay:CASSETTE and no model.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help=f"Agents of a step thinking at once, on threads "
        f"(default: {SERVER_CONCURRENCY} for an openai: server, 1 otherwise; a local hf: "
        "model answers them in batches). The run does not depend on it, given a model that "
        "answers a prompt the same way each time.")] = None,
    metrics: Annotated[bool, typer.Option(
        "--metrics/--no-metrics", help="End by interviewing every agent about the world's "
        "events (diffusion, attendance); one request per agent and event.")] = True,
    max_tokens: MaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run generative agents in a simulated sandbox world for --steps steps.

    Example: [bold]stepwise simulate party --steps 12 --out party-run[/bold], then
    [bold]stepwise simulate party --steps 12 --out party-run --resume[/bold];
    [bold]stepwise simulate smallville --steps 144 --out town[/bold] is one game day of 25
    agents in 10-minute steps, [bold]--steps 8640 --step-seconds 10[/bold] the same day in
    the paper's 10-second steps; [bold]--concurrency 8[/bold] lets 8 of them think at once.
    """
    hold_threads(threads)
    from stepwise.agents.generative.simulation import RUN_DB, STEP_LOG, RunSettings, Simulation
    from stepwise.agents.generative.world_checks import check_room, read_world

    if mechanisms not in ("paper", "basic"):
        raise StepwiseError(f"--mechanisms is 'paper' or 'basic', not {mechanisms!r}")
    path = world_file(world)
    town = read_world(path)  # a bad world fails here, before any model
    check_room(RunSettings(world=str(path), step_seconds=step_seconds).world_of(town), steps,
               path)
    chat = model_from_uri(model, model_name, CallOptions.from_cli(
        MAX_TOKENS, max_tokens, timeout, temperature, seed, repetition_penalty, device, dtype))
    concurrency = concurrency or default_concurrency(model)
    chat = batched(chat, concurrency)
    if record_to is not None:
        from stepwise.llm.replay import record

        chat = record(chat, str(record_to), source=model)
    with Simulation.start(path, run_dir, chat, steps=steps, resume=resume,
                          embeddings=run_embeddings(), concurrency=concurrency, radius=radius,
                          max_turns=max_turns, threshold=threshold,
                          mechanisms=mechanisms, step_seconds=step_seconds) as run:
        start = run.step_number
        with progress_bar("steps", disable=state["quiet"]) as progress:
            bar = progress.add_task("simulating", total=steps)

            def logged(entry: dict) -> None:
                if not state["quiet"]:
                    progress.console.print(step_line(entry), highlight=False,
                                           soft_wrap=True)
                progress.update(bar, advance=1, description=f"simulating {entry['time']}")

            entries = run.run(steps, logged, concurrency=concurrency)
        counters: dict[str, int] = {}
        for agent in run.agents.values():
            for key, value in agent["counters"].items():
                counters[key] = counters.get(key, 0) + value
        counters["conversations"] = sum(len(e["conversations"]) for e in entries)
        seconds = ":%S" if run.world.spec.clock.seconds_per_step else ""
        out.print(f"{run.world.name}: {steps_done(start, run.step_number)}, game time "
                  f"{run.world.now.strftime('%Y-%m-%d %H:%M' + seconds)} ({SIMULATED_NOTE})",
                  highlight=False)
        out.print("events (all agents, this run; conversations this session): " + (
            ", ".join(f"{k} {v}" for k, v in sorted(counters.items())) or "none"),
            highlight=False)
        report = run.cost_report()
        write_atomic(run_dir / COSTS_FILE, json.dumps(
            {"simulated": True, "model": model, "note": SIMULATED_NOTE, **report}, indent=1))
        if not state["quiet"]:
            print_costs(report, model)
        if metrics and run.world.spec.events:
            from stepwise.agents.generative.town_metrics import town_metrics

            measured = town_metrics(run)
            write_atomic(run_dir / METRICS_FILE, json.dumps({"model": model, **measured},
                                                            indent=1))
            print_metrics(measured, model)
        out.print(f"run: {run_dir / RUN_DB}, step log: {run_dir / STEP_LOG}, costs: "
                  f"{run_dir / COSTS_FILE}" + (f", metrics: {run_dir / METRICS_FILE}"
                                               if metrics and run.world.spec.events else ""),
                  highlight=False)


def default_concurrency(model: str) -> int:
    """Agents thinking at once when --concurrency is not given: a server answers several
    requests together; a local model or a simulation gains nothing from threads."""
    return SERVER_CONCURRENCY if model.partition(":")[0] == "openai" else 1


def batched(chat: BaseChatModel, concurrency: int) -> BaseChatModel:
    """A local model that can answer several requests in one ``generate`` (``hf:``) behind
    a queue that batches the concurrent agents' requests; any other model as it is."""
    if concurrency < 2 or not callable(getattr(chat, "generate_many", None)):
        return chat
    from stepwise.llm.batching import BatchingChatModel

    return BatchingChatModel(model=chat, max_batch=concurrency)


def usage_cells(usage: dict) -> list:
    return [usage["requests"], usage["tokens_in"], usage["tokens_out"],
            f"{usage['seconds']:.2f}"]


def print_costs(report: dict, model: str) -> None:
    """What the whole run has cost, per agent and per game hour, with the totals."""
    columns = [number("requests"), number("tokens in"), number("tokens out"),
               number("seconds")]
    total = Row(["all", *usage_cells(report["total"])], style="bold")
    out.print(ReadableTable(
        [Column("agent", wrap=False), *columns],
        [*([u["agent"], *usage_cells(u)] for u in report["per_agent"]), total],
        title=f"model requests per agent, whole run ({model}; {SIMULATED_NOTE})"))
    out.print(ReadableTable(
        [Column("game hour", wrap=False), *columns, number("per agent")],
        [*([u["hour"], *usage_cells(u), u["requests_per_agent"]] for u in report["per_hour"]),
         Row(["all", *usage_cells(report["total"]), report["requests_per_agent_hour"]],
             style="bold")],
        title="model requests per game hour"))
    out.print(f"{report['requests_per_agent_hour']} requests and "
              f"{report['seconds_per_agent_hour']} s of request time per agent-hour, over "
              f"{plural(report['agent_hours'], 'agent-hour')} ({model})", highlight=False)


def print_metrics(measured: dict, model: str) -> None:
    """The paper's measures of the run, each with how it was judged."""
    rows = []
    for event in measured["events"]:
        rows.append([event["event"], "diffusion",
                     f"{len(event['knowers'])}/{event['agents']} ({event['diffusion']:.2f})",
                     event["judge"]])
        if "invited" in event:
            came = event["attended"]
            value = "not reached" if came is None else (
                f"{len(came)}/{len(event['invited'])}" + (
                    f" ({event['attendance']:.2f})" if event["attendance"] is not None else ""))
            rows.append([event["event"], "attendance", value,
                         (f"of those told of it in a conversation, who was in {event['place']} "
                         f"between {event['start'][11:]} and {event['end'][11:]}")])
    rows.append(["town", "network density", f"{measured['density']:.3f}",
                 (f"{plural(measured['conversation_edges'], 'pair')} who talked (over "
                 "conversations)")])
    out.print(ReadableTable(
        [Column("of", wrap=False), Column("measure", wrap=False), number("value"), "judged by"],
        rows, title=f"the paper's measures at {measured['time']} ({model}; interviews: "
        f"{measured['interview_requests']} requests; {SIMULATED_NOTE})"))


@app.command()
@cli_errors
def interview(
    run_dir: RunArg,
    agent: AgentArg,
    question: Annotated[str, typer.Argument(help="What to ask the agent.")],
    model: SimModelOpt = DEFAULT_MODEL,
    model_name: ModelNameOpt = None,
    k: KOpt = 10,
    max_tokens: MaxTokensOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Ask an agent of a run a question; it answers from the memories it retrieves for it.

    Prints the answer and the ids of the memories it cites (see them with stepwise memory).
    The interview leaves the run as it was.
    Example: [bold]stepwise interview party-run "Klaus Mueller" "Are you going to a party?"[/bold]
    """
    hold_threads(threads)
    from stepwise.agents.generative.interview import interview as ask
    from stepwise.agents.generative.simulation import Simulation

    if not question.strip():
        raise StepwiseError("the question is empty")
    chat = model_from_uri(model, model_name, CallOptions.from_cli(
        MAX_TOKENS, max_tokens, timeout, temperature, seed, repetition_penalty, device, dtype))
    with Simulation.inspect(run_dir, chat, embeddings=run_embeddings()) as run:
        mind = run.agent(agent)
        with run.inspection():
            answer = ask(mind, question, run.world.now, k=k)
            cited = {i: mind.stream.get(i).text for i in answer.cited}
    out.print(f"[bold]{escape(agent)}:[/bold] {escape(answer.answer)}", emoji=False,
              soft_wrap=True)
    out.print("cited memories: " + (", ".join(map(str, answer.cited)) or "none"),
              highlight=False)
    if not state["quiet"]:
        for mid, text in cited.items():
            out.print(f"  [{mid}] {text}", highlight=False, markup=False, emoji=False,
                      soft_wrap=True)
        if not answer.parsed:
            err.print("the model did not answer in the JSON asked for; its text is shown "
                      "without citations")


@app.command()
@cli_errors
def memory(
    run_dir: RunArg,
    agent: AgentArg,
    query: Annotated[str, typer.Option("--query", "-q", help="What to retrieve memories for.")],
    k: KOpt = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per memory, "
                                          "best first.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """An agent's memories ranked for a query, with recency, importance and relevance.

    Each component is min-max normalised over the agent's memories; the score is their
    weighted sum. Inspecting leaves the run as it was.
    Example: [bold]stepwise memory party-run "Maria Lopez" --query "Valentine's Day party"[/bold]
    """
    hold_threads(threads)  # the embedding model is torch
    from stepwise.agents.generative.simulation import Simulation

    if not query.strip():
        raise StepwiseError("the query is empty")
    with Simulation.inspect(run_dir, embeddings=run_embeddings()) as run:
        stream = run.agent(agent).stream
        with run.inspection():
            found = stream.retrieve(query, k=k, now=run.world.now)
    if as_json:
        for m in found:
            out.print_json(json.dumps(memory_json(m), ensure_ascii=False))
        return
    title = (f"{agent}: {len(found)} of {plural(len(stream), 'memory', 'memories')} for "
             f"{query!r} ({SIMULATED_NOTE})")
    rows = [(m.id, f"{m.score:.3f}", f"{m.recency:.3f}", f"{m.importance_score:.3f}",
             f"{m.relevance:.3f}", m.kind, f"{m.created:%d %H:%M}", m.text) for m in found]
    out.print(ReadableTable([number("id"), number("score"), number("recency"),
                             number("importance"), number("relevance"),
                             Column("kind", wrap=False), Column("created", wrap=False),
                             "memory"], rows, title=title))


def memory_json(m: RetrievedMemory) -> dict:
    """A retrieved memory as ``memory --json`` prints it: the table's columns unrounded,
    the importance as rated (1-10) beside its normalised component, times in ISO 8601."""
    return {"id": m.id, "score": m.score, "recency": m.recency,
            "importance": m.importance_score, "relevance": m.relevance, "kind": m.kind,
            "created": m.created.isoformat(), "memory": m.text,
            "rated_importance": m.importance, "evidence": list(m.evidence),
            "simulated": True}
