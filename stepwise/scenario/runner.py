"""Running a scenario against a model and checking what it expects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from stepwise.errors import StepwiseError
from stepwise.llm.replay import ReplayChatModel, record
from stepwise.scenario.agents import scenario_agent
from stepwise.scenario.loader import load_scenario
from stepwise.scenario.schema import Expectation, Scenario


@dataclass
class Check:
    expectation: Expectation
    passed: bool
    found: str


@dataclass
class ScenarioOutcome:
    """What one scenario run gave: its result, each check, or the error that stopped it."""

    file: str
    name: str = ""
    agent: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(check.passed for check in self.checks)


def run_scenario(scenario: Scenario, config: Any, inputs: Any, model: BaseChatModel,
                 outcome: ScenarioOutcome) -> ScenarioOutcome:
    start = time.perf_counter()
    try:
        outcome.result = scenario_agent(scenario.agent).run(  # type: ignore[union-attr]
            model, config, inputs)
    except StepwiseError as exc:
        outcome.error = str(exc)
    else:
        for expectation in scenario.expect:
            passed, found = expectation.evaluate(outcome.result)
            outcome.checks.append(Check(expectation, passed, found))
    outcome.seconds = time.perf_counter() - start
    return outcome


def replay_file(path: str) -> ScenarioOutcome:
    """Load a scenario and run it against its cassette; errors end up in the outcome.

    Any error, not only a ``StepwiseError``, is this scenario's FAIL row: one broken
    scenario must not stop the others of ``replay DIR`` from running.
    """
    outcome = ScenarioOutcome(file=str(path))
    try:
        scenario, config, inputs = load_scenario(path)
        outcome.name, outcome.agent = scenario.name, scenario.agent
        model = ReplayChatModel(cassette=str(scenario.cassette_path))
        return run_scenario(scenario, config, inputs, model, outcome)
    except StepwiseError as exc:
        outcome.error = str(exc)
    except Exception as exc:  # noqa: BLE001 -- isolation: a bug in one scenario is its row
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def record_file(path: str, model: BaseChatModel, source: str | None = None) -> ScenarioOutcome:
    """Run a scenario against ``model`` and write a fresh cassette of what it answered."""
    scenario, config, inputs = load_scenario(path)
    outcome = ScenarioOutcome(file=str(path), name=scenario.name, agent=scenario.agent)
    recorder = record(model, str(scenario.cassette_path), source=source)
    return run_scenario(scenario, config, inputs, recorder, outcome)
