"""``ThinkAgent``: the think-as-tool agent in a few lines of Python.

    agent = ThinkAgent(model, tools=[get_weather], think_tools=["think", "plan"],
                       budget=ThinkBudget(max_calls=3))
    run = agent.run("Should I take an umbrella to Paris tomorrow?")
    print(run.answer, run.metrics.think_rate)

Every run has a thread id; with a persistent checkpointer (``sqlite_checkpointer``) a run
that was killed, or that waits for a human, goes on with ``agent.resume(thread_id, ...)``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from stepwise.agents.think.budget import NativeThinking, ThinkBudget
from stepwise.agents.think.graph import ThinkLoop
from stepwise.agents.think.metrics import RunMetrics
from stepwise.agents.think.state import Status, Thought
from stepwise.agents.think.steps import ASK_HUMAN, ThinkSteps
from stepwise.errors import ConfigError, StepwiseError
from stepwise.tools.think import PromptThinkTool, load_think_tools

log = logging.getLogger("stepwise.think")


@dataclass
class ThinkRun:
    """Where a run stands: its status, answer, history, thoughts and metrics."""

    thread_id: str
    status: Status
    answer: str
    messages: list[AnyMessage]
    thoughts: list[Thought]
    metrics: RunMetrics
    waiting_for: dict[str, Any] | None = None  # the interrupt's payload, when waiting


class ThinkAgent:
    """A ReAct agent whose thinking is a set of tools; see the module docstring."""

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool] = (),
        *,
        think_tools: Sequence[str | BaseTool] = ("think",),
        think_model: BaseChatModel | None = None,
        prompts_dir: str | Path | None = None,
        budget: ThinkBudget | None = None,
        native: NativeThinking | None = None,
        system_prompt: str = "",
        ask_human: bool = False,
        max_turns: int = 20,
        max_error_streak: int = 3,
        strip_reasoning: bool = True,
        checkpointer: BaseCheckpointSaver | None = None,
    ) -> None:
        names = [t for t in think_tools if isinstance(t, str)]
        loaded = iter(load_think_tools(names, think_model, prompts_dir))
        thinking = [next(loaded) if isinstance(t, str) else t for t in think_tools]
        thinking = [t.with_llm(think_model or model) if isinstance(t, PromptThinkTool) else t
                    for t in thinking]
        by_name = {tool.name: tool for tool in tools}
        clash = sorted(set(by_name) & {t.name for t in thinking} | (
            {ASK_HUMAN} & set(by_name) if ask_human else set()))
        if clash or len(by_name) != len(tools):
            raise ConfigError(f"tool names must be unique; clashing: {', '.join(clash) or 'tools'}")
        self.steps = ThinkSteps(
            model=model, tools=by_name, think_tools={t.name: t for t in thinking},
            budget=budget or ThinkBudget(), native=native or NativeThinking(),
            system_prompt=system_prompt, ask_human=ask_human, max_turns=max_turns,
            max_error_streak=max_error_streak, strip_reasoning=strip_reasoning)
        self.graph = ThinkLoop(self.steps).graph().compile(
            checkpointer=checkpointer or InMemorySaver())

    def _config(self, thread_id: str, metadata: dict | None = None) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "metadata": metadata or {},
                "recursion_limit": 3 * self.steps.max_turns + 10}

    def run(self, request: str, *, thread_id: str | None = None,
            on_step: Callable[[str, dict], None] | None = None,
            metadata: dict[str, Any] | None = None) -> ThinkRun:
        """Run until the model answers, a limit stops it, or it waits for a human.

        ``metadata`` is kept with the run's checkpoints (the CLI keeps the world and task
        there, to rebuild them on resume).
        """
        thread_id = thread_id or uuid.uuid4().hex[:12]
        if self.graph.get_state(self._config(thread_id)).values:
            raise StepwiseError(f"thread {thread_id!r} already has a run; resume it or pick "
                                "another thread id")
        start = {"messages": [HumanMessage(request)], "status": "running", "error_streak": 0}
        return self._drive(start, thread_id, on_step, metadata)

    def resume(self, thread_id: str, answer: str | None = None, *,
               on_step: Callable[[str, dict], None] | None = None) -> ThinkRun:
        """Go on with a run: after a kill (no answer), or with a human's answer to its question."""
        snapshot = self.graph.get_state(self._config(thread_id))
        if not snapshot.values:
            raise StepwiseError(f"no run with thread id {thread_id!r} in this checkpointer")
        if snapshot.interrupts and answer is None:
            question = snapshot.interrupts[0].value.get("question", "")
            raise StepwiseError(f"thread {thread_id!r} waits for a human answer to: {question}")
        if answer is not None and not snapshot.interrupts:
            state = "has finished" if not snapshot.next else "is not waiting for an answer"
            raise StepwiseError(f"thread {thread_id!r} {state}; there is nothing to answer")
        if not snapshot.next:
            return self.result(thread_id)
        return self._drive(Command(resume=answer) if snapshot.interrupts else None,
                           thread_id, on_step, run_metadata(snapshot.metadata))

    def _drive(self, start: Any, thread_id: str, on_step: Callable[[str, dict], None] | None,
               metadata: dict[str, Any] | None = None) -> ThinkRun:
        config = self._config(thread_id, metadata)
        # "sync": each step is on disk before the next starts, so a kill loses at most one step.
        for chunk in self.graph.stream(start, config, stream_mode="updates", durability="sync"):
            for node, update in chunk.items():
                if on_step is not None and node != "__interrupt__":
                    on_step(node, update or {})
        run = self.result(thread_id)
        log.info("think run %s: %s; %s", thread_id, run.status, run.metrics.summary())
        return run

    def result(self, thread_id: str) -> ThinkRun:
        """The run as its last checkpoint has it."""
        snapshot = self.graph.get_state(self._config(thread_id))
        values = snapshot.values
        if not values:
            raise StepwiseError(f"no run with thread id {thread_id!r} in this checkpointer")
        messages = values.get("messages", [])
        waiting = snapshot.interrupts[0].value if snapshot.interrupts else None
        status: Status = "waiting_for_human" if waiting else values.get("status", "running")
        last = messages[-1] if messages else None
        answer = last.text if isinstance(last, AIMessage) and status == "answered" else ""
        return ThinkRun(thread_id=thread_id, status=status, answer=answer, messages=messages,
                        thoughts=values.get("thoughts", []),
                        metrics=RunMetrics.from_counts(values.get("counts")), waiting_for=waiting)


LANGGRAPH_METADATA = frozenset({"source", "step", "parents", "writes", "thread_id"})


def run_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The caller's metadata of a checkpoint, without LangGraph's own keys."""
    return {k: v for k, v in (metadata or {}).items() if k not in LANGGRAPH_METADATA}


def saved_run(checkpointer: BaseCheckpointSaver,
              thread_id: str) -> tuple[dict[str, Any], list[AnyMessage]]:
    """A checkpointed run's metadata and messages, read before any agent is built."""
    saved = checkpointer.get_tuple({"configurable": {"thread_id": thread_id}})
    if saved is None:
        raise StepwiseError(f"no run with thread id {thread_id!r} in these checkpoints")
    return run_metadata(saved.metadata), saved.checkpoint["channel_values"].get("messages", [])
