"""Did the agent do the task? The tau-bench criterion: the final database equals the one
the gold actions produce from the same fresh start, field for field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from stepwise.sim.airline.tasks import AirlineTask
from stepwise.sim.airline.world import AirlineWorld

MAX_DIFFERENCES = 10


class TaskCheck(BaseModel):
    task_id: str
    success: bool
    differences: list[str]


def expected_state(task: AirlineTask) -> dict[str, Any]:
    """The state a fresh world reaches after the task's gold actions."""
    world = AirlineWorld()
    for action in task.actions:
        world.apply(action.name, action.args)
    return world.state()


def check_task(task: AirlineTask, world: AirlineWorld) -> TaskCheck:
    """Compare ``world`` (which started fresh) with the gold outcome of ``task``."""
    differences = state_differences(world.state(), expected_state(task))
    return TaskCheck(task_id=task.id, success=not differences, differences=differences)


def state_differences(actual: Any, expected: Any, limit: int = MAX_DIFFERENCES) -> list[str]:
    """Readable differences, ``path: <actual> != expected <value>``, at most ``limit`` plus a
    count of the rest."""
    found: list[str] = []
    _diff(actual, expected, "", found)
    if len(found) > limit:
        return found[:limit] + [f"... and {len(found) - limit} more differences"]
    return found


def _diff(actual: Any, expected: Any, path: str, found: list[str]) -> None:
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: missing, expected {_short(expected[key])}")
            elif key not in expected:
                found.append(f"{where}: unexpected {_short(actual[key])}")
            else:
                _diff(actual[key], expected[key], where, found)
    elif isinstance(actual, list) and isinstance(expected, list):
        for index in range(max(len(actual), len(expected))):
            where = f"{path}[{index}]"
            if index >= len(actual):
                found.append(f"{where}: missing, expected {_short(expected[index])}")
            elif index >= len(expected):
                found.append(f"{where}: unexpected {_short(actual[index])}")
            else:
                _diff(actual[index], expected[index], where, found)
    elif actual != expected or type(actual) is not type(expected):
        found.append(f"{path}: {_short(actual)} != expected {_short(expected)}")


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
