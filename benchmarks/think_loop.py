"""What a think-agent turn costs on top of its model and tool calls (LangGraph, checkpoints).

Every search rollout and evaluation trial runs this loop, so its overhead is paid per step.
The same scripted model and tools run three ways in one process: a bare hand-written
loop (model.invoke, tool.invoke, append: the baseline), ``ThinkAgent`` with in-memory
checkpoints, and ``ThinkAgent`` with SQLite checkpoints written before each next step.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from benchmarks import rounded
from stepwise.agents.think import ThinkAgent
from stepwise.checkpoints import sqlite_checkpointer
from stepwise.testing.scripted import ScriptedChatModel, ai


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def script(turns: int) -> ScriptedChatModel:
    answers = [ai("", ("think", {"thought": f"step {i}"})) if i % 4 == 0 else
               ai("", ("lookup", {"key": f"k{i}"})) for i in range(turns - 1)]
    return ScriptedChatModel(answers=[*answers, ai("done")])


def bare_loop(turns: int) -> float:
    model, tools = script(turns), {"lookup": lookup}
    bound = model.bind_tools([lookup])
    messages = [HumanMessage("go")]
    start = time.perf_counter()
    while True:
        message = bound.invoke(messages)
        messages.append(message)
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            result = tools[call["name"]].invoke(call) if call["name"] in tools else \
                ToolMessage("noted", tool_call_id=call["id"])
            messages.append(result)
    return time.perf_counter() - start


def agent_loop(turns: int, checkpoints: Path | None) -> float:
    saver = sqlite_checkpointer(checkpoints) if checkpoints else None
    agent = ThinkAgent(script(turns), [lookup], checkpointer=saver, max_turns=turns)
    start = time.perf_counter()
    run = agent.run("go")
    elapsed = time.perf_counter() - start
    assert run.status == "answered" and run.metrics.turns == turns, run.status
    return elapsed


def run(quick: bool = False) -> dict:
    turns, runs = (20, 5) if quick else (40, 15)
    seconds: dict[str, list[float]] = {"bare": [], "memory": [], "sqlite": []}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(runs + 1):  # the first round warms up and is dropped
            sample = {"bare": bare_loop(turns), "memory": agent_loop(turns, None),
                      "sqlite": agent_loop(turns, Path(folder) / f"c{i}.sqlite")}
            if i:
                for name, value in sample.items():
                    seconds[name].append(value)
    per_turn = {name: sorted(v)[len(v) // 2] / turns * 1e6 for name, v in seconds.items()}
    return {
        "figures": {
            "agent_us_per_turn_in_memory": rounded(per_turn["memory"]),
            "agent_us_per_turn_sqlite": rounded(per_turn["sqlite"]),
            "overhead_us_per_turn_in_memory": rounded(per_turn["memory"] - per_turn["bare"]),
            "turns_per_run": turns,
            "runs": runs,
        },
        "baseline": {"what": "a hand-written loop: bound_model.invoke, tool.invoke, append",
                     "us_per_turn": rounded(per_turn["bare"])},
        "ratio": {"value": rounded(per_turn["memory"] / per_turn["bare"]),
                  "ratio_of": "median µs per turn, in-memory agent over bare loop"},
    }
