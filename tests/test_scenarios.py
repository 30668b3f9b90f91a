"""Scenario files: validation errors that point at file, line and field; replay and record."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stepwise.errors import ScenarioError
from stepwise.llm import from_uri
from stepwise.scenario.loader import find_scenarios, load_scenario
from stepwise.scenario.runner import record_file, replay_file
from stepwise.scenario.schema import Expectation

from .conftest import REPO

BUNDLED = find_scenarios([REPO / "scenarios"])


def test_there_are_bundled_scenarios():
    assert len(BUNDLED) >= 2


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenarios_replay_and_pass(path):
    outcome = replay_file(str(path))
    assert outcome.error is None and outcome.checks
    assert outcome.passed, [c.found for c in outcome.checks if not c.passed]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


VALID = """\
name: t
agent: chat
config:
  temperature: 0
inputs:
  messages:
    - role: user
      content: hi
cassette: c.jsonl
expect:
  - path: output.content
    equals: "echo: hi"
"""


@pytest.mark.parametrize(("text", "message"), [
    ("name: t\nagent: [unclosed\n", r"s.yaml:3: malformed YAML"),
    (VALID.replace("agent: chat", "agent: chat\ncolour: red"), r"s.yaml:3: colour: unknown field"),
    (VALID.replace("agent: chat", "agent: translator"),
     r"s.yaml:2: agent: unknown agent 'translator' \(known: chat"),
    (VALID.replace("temperature: 0", "temperature: hot"),
     r"s.yaml:4: config.temperature: Input should be a valid number"),
    (VALID.replace("role: user", "role: robot"),
     r"s.yaml:7: inputs.messages\[0\].role: Input should be"),
    (VALID.replace("    equals: \"echo: hi\"", "    equals: 1\n    contains: x"),
     r"s.yaml:11: expect\[0\]: give exactly one of"),
    (VALID.replace("cassette: c.jsonl\n", ""), r"s.yaml:1: cassette: Field required"),
    ("- just\n- a list\n", r"s.yaml:1: a scenario must be a mapping"),
])
def test_validation_errors_name_file_line_and_field(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, text))


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.yaml")


def test_record_then_replay_then_break_an_expectation(tmp_path):
    path = write(tmp_path, VALID)
    recorded = record_file(str(path), from_uri("sim:echo"), source="sim:echo")
    assert recorded.passed and (tmp_path / "c.jsonl").exists()
    assert replay_file(str(path)).passed
    path.write_text(VALID.replace('equals: "echo: hi"', 'equals: "echo: bye"'))
    broken = replay_file(str(path))
    assert not broken.passed and broken.checks[0].found == "found 'echo: hi'"


def test_replay_without_cassette_fails_with_the_reason(tmp_path):
    outcome = replay_file(str(write(tmp_path, VALID)))
    assert not outcome.passed and "cassette not found" in outcome.error


@pytest.mark.parametrize(("check", "value", "result", "passes"), [
    ("equals", 3, {"a": [{"b": 3}]}, True),
    ("contains", "ell", {"a": [{"b": "hello"}]}, True),
    ("contains", "add", {"a": [{"b": ["add", "sub"]}]}, True),
    ("matches", r"^h.l+o$", {"a": [{"b": "hello"}]}, True),
    ("min", 4, {"a": [{"b": 3}]}, False),
    ("max", 4, {"a": [{"b": 3}]}, True),
    ("length", 2, {"a": [{"b": [1, 2]}]}, True),
    ("equals", 3, {"a": []}, False),
    ("min", 1, {"a": [{"b": "text"}]}, False),
])
def test_expectation_checks(check, value, result, passes):
    expectation = Expectation.model_validate({"path": "a[0].b", check: value})
    assert expectation.evaluate(result)[0] is passes


def test_bundled_scenarios_are_plain_yaml_with_relative_cassettes():
    for path in BUNDLED:
        data = yaml.safe_load(path.read_text())
        assert not Path(data["cassette"]).is_absolute()
        assert (path.parent / data["cassette"]).exists()
