"""A simulated airline in the style of tau-bench: a database, a written policy, tools that
enforce it, tasks with gold actions, and an exact-state check.

Importing this package registers the ``sim:airline-oracle`` chat model.
"""

from stepwise.sim.airline import oracle  # noqa: F401  (registers sim:airline-oracle)
from stepwise.sim.airline.check import TaskCheck, check_task, expected_state
from stepwise.sim.airline.tasks import AirlineTask, get_task, load_tasks
from stepwise.sim.airline.world import AirlineWorld, PolicyViolation, policy_text

__all__ = [
    "AirlineTask",
    "AirlineWorld",
    "PolicyViolation",
    "TaskCheck",
    "check_task",
    "expected_state",
    "get_task",
    "load_tasks",
    "policy_text",
]
