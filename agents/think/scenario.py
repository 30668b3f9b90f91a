"""The think agent as a scenario agent (``agent: think``), for record and replay.

A scenario names a world and task (or gives a request), the agent's options, and the
answers a human gives when the run pauses. Every pause is a real one: the run stops at
LangGraph's ``interrupt()``, and a new agent on the same SQLite checkpoints, with the
world rebuilt from the checkpointed history, resumes it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field

from stepwise.agents.think.agent import ThinkRun
from stepwise.agents.think.options import ThinkOptions
from stepwise.agents.think.worlds import Episode, open_episode
from stepwise.checkpoints import sqlite_checkpointer
from stepwise.errors import ConfigError
from stepwise.scenario.agents import register_agent


class ThinkScenarioConfig(ThinkOptions):
    world: str | None = Field(default=None, description="a policy world, e.g. airline")
    task: str | None = Field(default=None, description="a task of the world")
    system_prompt: str | None = Field(default=None, description="default: the world's policy")


class ThinkScenarioInputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: str | None = Field(default=None, description="default: the task's request")
    human_answers: list[str] = Field(default_factory=list)


def run_result(run: ThinkRun, episode: Episode | None) -> dict:
    """A run as plain data for expectations."""
    return {
        "status": run.status,
        "answer": run.answer,
        "metrics": run.metrics.as_dict(),
        "thoughts": [dict(t) for t in run.thoughts],
        "tool_calls": [c["name"] for m in run.messages if isinstance(m, AIMessage)
                       for c in m.tool_calls],
        "tool_results": [{"name": m.name, "status": m.status, "content": m.text}
                         for m in run.messages if isinstance(m, ToolMessage)],
        "task": episode.check() if episode else None,
    }


@register_agent("think", ThinkScenarioConfig, ThinkScenarioInputs)
def run_think(model: BaseChatModel, config: ThinkScenarioConfig,
              inputs: ThinkScenarioInputs) -> dict:
    def episode() -> Episode | None:
        return open_episode(config.world, config.task, config.tools) if config.world else None

    first = episode()
    request = inputs.request or (first.request if first else "")
    if not request:
        raise ConfigError("a think scenario needs inputs.request or a world task")
    with tempfile.TemporaryDirectory(prefix="stepwise-think-") as folder:
        checkpoints = Path(folder) / "checkpoints.sqlite"

        def agent_on(current: Episode | None):
            system = config.system_prompt if config.system_prompt is not None else (
                current.policy if current else "")
            return config.build(model, current.tools if current else [], system,
                                checkpointer=sqlite_checkpointer(checkpoints))

        run = agent_on(first).run(request, thread_id="scenario")
        current, pauses = first, []
        for answer in inputs.human_answers:
            if run.status != "waiting_for_human":
                break
            pauses.append(run.waiting_for)
            current = episode()  # a new process would start from a fresh world ...
            if current is not None:
                current.restore(run.messages)  # ... and rebuild it from the checkpoint
            run = agent_on(current).resume("scenario", answer)
        return {**run_result(run, current), "pauses": pauses}
