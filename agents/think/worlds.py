"""Policy worlds a think agent can be run in: tools, the written policy, tasks, a checker.

A world task is a user request plus the database state it should end in; success is an
exact match of the final state (tau-bench's criterion). The worlds are simulations and
every figure from them is labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool

from stepwise.errors import ConfigError

WORLDS = ("airline",)


@dataclass
class Episode:
    """One fresh world for one run: its tools, its policy, and (for a task) the check."""

    world: Any
    tools: list[BaseTool]
    policy: str
    task: Any | None = None
    request: str = ""
    restored_calls: int = 0

    def check(self) -> dict[str, Any] | None:
        """``{"success", "differences"}`` for a task; ``None`` for a free-form request."""
        if self.task is None:
            return None
        from stepwise.sim.airline import check_task

        outcome = check_task(self.task, self.world)
        return {"success": outcome.success, "differences": list(outcome.differences)}

    def restore(self, messages: Sequence[AnyMessage]) -> None:
        """Redo the successful tool calls of a checkpointed history on this fresh world.

        The world is deterministic, so a run resumed in a new process finds the database
        as it left it.
        """
        names = {tool.name for tool in self.tools}
        for i, message in enumerate(messages):
            if not isinstance(message, AIMessage):
                continue
            replies = {}  # the replies to this message: the tool messages right after it
            for later in messages[i + 1:]:
                if not isinstance(later, ToolMessage):
                    break
                replies[later.tool_call_id] = later
            for call in message.tool_calls:
                reply = replies.get(call.get("id") or "")
                if call["name"] in names and reply is not None and reply.status != "error":
                    self.world.apply(call["name"], call["args"])
                    self.restored_calls += 1


def task_ids(world: str) -> list[str]:
    _check_world(world)
    from stepwise.sim.airline import load_tasks

    return [task.id for task in load_tasks()]


def open_episode(world: str, task_id: str | None = None,
                 tool_names: Sequence[str] | None = None) -> Episode:
    """A fresh world; with ``task_id``, set up for that task (a bad id is a clear error)."""
    _check_world(world)
    from stepwise.sim.airline import AirlineWorld, get_task

    task = get_task(task_id) if task_id else None
    airline = AirlineWorld()
    tools = airline.tools()
    if tool_names is not None:
        tools = select_tools(tools, tool_names)
    return Episode(world=airline, tools=tools, policy=airline.policy, task=task,
                   request=task.request if task else "")


def select_tools(tools: Sequence[BaseTool], names: Sequence[str]) -> list[BaseTool]:
    """The named tools, in the order given; an unknown name is a ``ConfigError``."""
    by_name = {tool.name: tool for tool in tools}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(f"unknown tool {', '.join(map(repr, unknown))} "
                          f"(this world has: {', '.join(by_name)})")
    return [by_name[name] for name in names]


def _check_world(world: str) -> None:
    if world not in WORLDS:
        raise ConfigError(f"unknown world {world!r} (known: {', '.join(WORLDS)})")
