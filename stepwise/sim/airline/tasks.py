"""The airline tasks: one user request each, with the gold write actions that fulfil it.

There is no simulated user, so each request carries every id and detail the agent needs.
A task the policy forbids has no actions: the right outcome is an unchanged database.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stepwise.errors import StepwiseError


class GoldAction(BaseModel):
    """One write tool call, as ``AirlineWorld.apply`` takes it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    args: dict[str, Any]


class AirlineTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    user_id: str
    request: str = Field(description="The user's first (and only) message to the agent.")
    actions: list[GoldAction] = Field(description="Gold write actions; empty for a refusal.")
    policy_refusal: bool
    note: str = Field(description="Why these actions, or which policy rule refuses.")


@cache
def _raw_tasks() -> str:
    return resources.files("stepwise.sim.airline").joinpath("data/tasks.json").read_text("utf-8")


def load_tasks() -> list[AirlineTask]:
    """Every airline task, freshly parsed."""
    return [AirlineTask.model_validate(item) for item in json.loads(_raw_tasks())]


def get_task(task_id: str) -> AirlineTask:
    """The task with this id; a ``StepwiseError`` naming the known ids otherwise."""
    tasks = load_tasks()
    for task in tasks:
        if task.id == task_id:
            return task
    known = ", ".join(task.id for task in tasks)
    raise StepwiseError(f"unknown airline task {task_id!r} (known: {known})")
