"""The scenario file: which agent, its config and inputs, the cassette, what to expect.

A scenario is a replayable test of an agent: ``stepwise record`` runs it against a real
model and writes the cassette; ``stepwise replay`` runs it against the cassette and
checks the expectations.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from stepwise.errors import ScenarioError

CHECKS = ("equals", "contains", "matches", "min", "max", "length")
PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
MAX_EXPECTED_CHARS = 32_000  # about what an expected value's JSON may take
MAX_EXPECTED_DEPTH = 20

_short = reprlib.Repr()  # a check in one table row: never the whole of a big value
_short.maxlevel, _short.maxlist, _short.maxdict, _short.maxstring, _short.maxother = 4, 8, 8, 120, 120


def _oversized(value: Any) -> str | None:
    """Why an expected value is too big to check, or None. A YAML alias bomb is a few lines
    that stand for billions of nodes (or a cycle): the walk counts an alias each time it is
    reached, so it stops at the limit instead of expanding the value."""
    budget = MAX_EXPECTED_CHARS
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_EXPECTED_DEPTH:
            return f"nests deeper than {MAX_EXPECTED_DEPTH} levels"
        if isinstance(item, dict):
            budget -= 2 + 2 * len(item)  # braces, colons and commas
            parts = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            budget -= 2 + len(item)
            parts = list(item)
        elif isinstance(item, str | bytes):
            budget -= 2 + len(item)
            parts = []
        else:
            budget -= len(str(item))
            parts = []
        if budget < 0:
            return f"is larger than {MAX_EXPECTED_CHARS} characters of JSON"
        stack += [(part, depth + 1) for part in parts]
    return None


def resolve(result: Any, path: str) -> Any:
    """``output.tool_calls[0].name`` looked up in nested dicts and lists."""
    value = result
    for key, index in PATH_PART.findall(path):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            raise LookupError(f"{path}: nothing at {key or '[' + index + ']'}") from None
    return value


class Expectation(BaseModel):
    """One check on the agent's result: a path and exactly one of the checks."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="where in the result, e.g. output.tool_calls[0].name")
    equals: Any = None
    contains: Any = None
    matches: str | None = None
    min: float | None = None
    max: float | None = None
    length: int | None = None

    @field_validator("equals", "contains")
    @classmethod
    def bounded(cls, value: Any) -> Any:
        """Refuse a value too big to compare or show: a scenario is a small test."""
        if (why := _oversized(value)) is not None:
            raise ValueError(f"the expected value {why}; expect something smaller")
        return value

    @model_validator(mode="after")
    def one_check(self) -> Expectation:
        given = [name for name in CHECKS if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(CHECKS)} (got {given or 'none'})")
        if self.matches is not None:
            re.compile(self.matches)
        return self

    @property
    def check(self) -> str:
        return next(name for name in CHECKS if name in self.model_fields_set)

    def describe(self) -> str:
        return f"{self.path} {self.check} {_short.repr(getattr(self, self.check))}"

    def evaluate(self, result: Any) -> tuple[bool, str]:
        """Whether the result passes, and what was found."""
        try:
            value = resolve(result, self.path)
        except LookupError as exc:
            return False, str(exc)
        want = getattr(self, self.check)
        try:
            ok = {
                "equals": lambda: value == want,
                "contains": lambda: want in value,
                "matches": lambda: re.search(want, str(value)) is not None,
                "min": lambda: value >= want,
                "max": lambda: value <= want,
                "length": lambda: len(value) == want,
            }[self.check]()
        except TypeError:
            ok = False
        found = value if self.check != "length" or not hasattr(value, "__len__") else len(value)
        return ok, f"found {found!r}"[:200]


class Scenario(BaseModel):
    """A replayable agent run."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    agent: str = Field(description="a registered scenario agent, e.g. chat")
    recorded_from: str | None = Field(
        default=None, description="the model URI the cassette was recorded from"
    )
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    cassette: str = Field(description="path of the cassette, relative to this file")
    expect: list[Expectation] = Field(default_factory=list)

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def cassette_path(self) -> Path:
        """The cassette, which must lie inside the scenario file's folder: ``record``
        overwrites it, so a path out of there (``../``, absolute, a symlink that leads
        elsewhere) could replace any file the user can write."""
        base = (self._source.parent if self._source else Path.cwd()).resolve()
        where = f"{self._source}: " if self._source else ""
        if Path(self.cassette).is_absolute():
            raise ScenarioError(f"{where}cassette: {self.cassette!r} is an absolute path; give "
                                "it relative to the scenario file, inside its folder")
        path = (base / self.cassette).resolve()
        if not path.is_relative_to(base):
            raise ScenarioError(f"{where}cassette: {self.cassette!r} leads outside the "
                                f"scenario's folder (to {path}); keep it inside {base}")
        return path
