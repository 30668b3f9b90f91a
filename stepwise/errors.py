"""Errors a user can fix: the CLI prints their message as one line, never a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StepwiseError(Exception):
    """Base for every error caused by input, configuration or an outside service."""


class ModelURIError(StepwiseError):
    """A model URI that names no known backend, or a backend that cannot be built."""


class ModelBackendError(StepwiseError):
    """A model server that is down, times out or answers something unusable."""


class CassetteError(StepwiseError):
    """A cassette that is missing, corrupt, or holds no answer for a request."""


# What a failing model call raises, as opposed to a bug in stepwise: the server's errors
# (timeouts and unusable answers included), a replay that has no answer, a connection that
# broke (``OSError``, ``TimeoutError`` among them). A caller that isolates one page, trial
# or task catches these and lets anything else raise (smolagents' rule: model errors are
# recorded, implementation errors raise).
MODEL_ERRORS: tuple[type[BaseException], ...] = (ModelBackendError, CassetteError, OSError)


class ScenarioError(StepwiseError):
    """A scenario file that cannot be read or does not validate."""


class ConfigError(StepwiseError):
    """An agent configuration naming unknown tools, or a prompt file that cannot be used."""


def error_line(exc: BaseException) -> str:
    """An error as the one line a report keeps of a failed task: a ``StepwiseError``'s own
    message, anything else with its type name (its first line, at most 300 characters)."""
    text = str(exc).strip() if isinstance(exc, StepwiseError) else f"{type(exc).__name__}: {exc}"
    return (text.splitlines() or [type(exc).__name__])[0][:300]


BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
          "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def _shown(value: object) -> str:
    """A value as the user typed it: 2 for 2.0, quotes only around text that is no number."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
    return str(value)


NOT_A = {"int_parsing": "a whole number", "int_from_float": "a whole number",
         "int_type": "a whole number", "float_parsing": "a number", "float_type": "a number"}


def problem_line(problem: dict, name: str) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a line naming ``name``,
    the option or field it is about, the way click words a bad value: ``Invalid value for
    '--simulations': must be at least 1, got 0``."""
    bound = BOUNDS.get(problem.get("type", ""))
    got = _shown(problem["input"]) if "input" in problem else None
    if bound is not None and bound[0] in problem.get("ctx", {}):
        text = f"must be {bound[1]} {_shown(problem['ctx'][bound[0]])}"
    elif problem.get("type") in NOT_A and got is not None:
        text, got = f"{got} is not {NOT_A[problem['type']]}", None
    else:
        text = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    if got is not None and not (problem.get("type") == "value_error" and got in text):
        text += f", got {got}"  # unless the message quotes the value itself
    return f"Invalid value for '{name}': {text}" if name else text


def validation_line(exc: Any, names: Mapping[str, str] | None = None) -> str:
    """A pydantic ``ValidationError`` as one line: its first problem, naming the option the
    field came from (``--`` and the field's name with dashes, or ``names[field]`` where the
    option is spelled otherwise, e.g. ``learning_rate`` -> ``--lr``)."""
    problems = exc.errors(include_url=False)
    if not problems:
        return str(exc).splitlines()[0]
    fields = [str(part) for part in problems[0].get("loc", ()) if isinstance(part, str)]
    field = fields[-1] if fields else ""
    name = (names or {}).get(field) or ("--" + field.replace("_", "-") if field else "")
    return problem_line(problems[0], name)
