"""Closed option sets: a `Literal` that the command line shows and checks, and that the
settings model behind the option refuses on its own for callers that skip the CLI."""

from __future__ import annotations

import typing
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from stepwise.cli import app
from stepwise.errors import StepwiseError

runner = CliRunner()


def explore_options(field: str) -> Callable[[str], object]:
    from stepwise.search.options import ExploreOptions

    return lambda value: ExploreOptions(**{field: value})


def pair_options(field: str) -> Callable[[str], object]:
    from stepwise.search.run import PairOptions

    return lambda value: PairOptions(**{field: value})


def environment(value: str) -> None:
    from stepwise.agents.environments import EnvSpec

    EnvSpec(env=value, dataset="airline", model="sim:airline-oracle").check()


def longmt_agent(value: str) -> object:
    from stepwise.agents.longmt import LongMTAgent
    from stepwise.llm import from_uri

    return LongMTAgent(from_uri("sim:translator"), decide=value)


def choices_of(model: type, field: str) -> tuple[str, ...]:
    """The values the settings model's field allows: its ``Literal``'s arguments."""
    return typing.get_args(typing.get_type_hints(model)[field])


def explore_choices(field: str) -> Callable[[], tuple[str, ...]]:
    from stepwise.search.options import ExploreOptions

    return lambda: choices_of(ExploreOptions, field)


def pair_choices(field: str) -> Callable[[], tuple[str, ...]]:
    from stepwise.search.run import PairOptions

    return lambda: choices_of(PairOptions, field)


def environments() -> tuple[str, ...]:
    from stepwise.agents.environments import ENVIRONMENTS

    return ENVIRONMENTS


def decide_modes() -> tuple[str, ...]:
    from stepwise.agents.longmt.page_steps import DECIDE_MODES

    return DECIDE_MODES


# (command, option, the model's choices, the model refusing a value)
CLOSED = [
    ("explore", "--env", environments, environment),
    ("explore", "--rollout", explore_choices("rollout"), explore_options("rollout")),
    ("explore", "--reward", explore_choices("reward"), explore_options("reward")),
    ("explore", "--q", explore_choices("q"), explore_options("q")),
    ("explore", "--negatives", pair_choices("negatives"), pair_options("negatives")),
    ("explore", "--decide", decide_modes, longmt_agent),
    ("translate", "--decide", decide_modes, longmt_agent),
]


def command_line(command: str, tmp_path) -> list[str]:
    dataset = tmp_path / "dataset.jsonl"  # never read: the option is refused first
    dataset.write_text("{}\n", encoding="utf-8")
    out = ["--out", str(tmp_path / "run")]
    return [command, str(dataset), "-m", "sim:translator", *out]


@pytest.mark.parametrize(("command", "option", "choices", "refuse"), CLOSED,
                         ids=[f"{c} {o}" for c, o, *_ in CLOSED])
def test_a_closed_option_shows_its_choices_and_refuses_others_in_one_line(
        command, option, choices, refuse, tmp_path):
    allowed = choices()
    shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    line = next(text for text in shown.stdout.splitlines()
                if text.lstrip("│ ").startswith(f"{option} "))
    assert "|".join(allowed) in line, line

    done = runner.invoke(app, [*command_line(command, tmp_path), option, "bogus"])
    assert done.exit_code == 2, done.output
    errors = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    quoted = ", ".join(repr(choice) for choice in allowed)
    assert errors[0] == (f"error: Invalid value for '{option}': 'bogus' is not one of "
                         f"{quoted}."), errors[0]  # the value named once
    assert not (tmp_path / "run").exists()  # refused before the run folder holds anything

    with pytest.raises((ValidationError, StepwiseError)):
        refuse("bogus")


@pytest.mark.parametrize(("field", "good"), [("scope", "all"), ("format", "stepwise"),
                                             ("negatives", "closest")])
def test_pair_options_refuse_a_value_outside_their_set(field, good):
    from stepwise.search.run import PairOptions

    assert getattr(PairOptions(**{field: good}), field) == good
    with pytest.raises(ValidationError, match=field):
        PairOptions(**{field: "bogus"})


def test_a_policy_kind_is_one_of_the_kinds_parse_knows():
    from stepwise.agents.longmt.policies import Policy, PolicyKind

    kinds = set(typing.get_args(PolicyKind))
    for text in ("none", "all", "auto", "oracle", "markers", "only:entities",
                 "fixed:none;pages"):
        assert Policy.parse(text).kind in kinds
    assert typing.get_type_hints(Policy)["kind"] == PolicyKind
