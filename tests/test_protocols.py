"""The three environment protocols: every shipped environment has all of them with the
same parameter names, and an episode with a reward is enough to search."""

from __future__ import annotations

import inspect
import random
from pathlib import Path

import pytest

from stepwise.agents.environments import ENVIRONMENTS, EnvSpec
from stepwise.search.environment import (
    Environment,
    Episode,
    Export,
    Reward,
    Searchable,
    members,
)
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.pairs import extract_pairs
from tests.test_explorer import ChainEnv

PROTOCOLS = (Episode, Reward, Export)


def shipped(name: str, tmp_path: Path) -> object:
    """The first task's environment of a shipped kind, built as the command line builds it."""
    if name == "longmt":
        from stepwise.sim.translation import make_documents, write_dataset

        spec = EnvSpec(env=name, dataset=str(write_dataset(make_documents(1, 0), tmp_path)),
                       model="sim:translator", page_sentences=5)
    else:
        spec = EnvSpec(env=name, dataset="airline", model="sim:airline-oracle")
    make_env, _ = spec.factory()
    return make_env(spec.task_ids()[0])


def parameter_names(function: object) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def assert_matches(env: object) -> None:
    for protocol in PROTOCOLS:
        assert isinstance(env, protocol), protocol.__name__
        for name in members(protocol):
            declared = getattr(protocol, name, None)
            if callable(declared):
                assert parameter_names(getattr(env, name)) == parameter_names(declared), name
    assert isinstance(env, Searchable) and isinstance(env, Environment)


def test_the_shipped_kinds_are_the_ones_checked():
    assert set(ENVIRONMENTS) == {"longmt", "think"}, "a new environment: add it to shipped()"


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_shipped_environment_has_the_three_protocols(name, tmp_path):
    assert_matches(shipped(name, tmp_path))


def test_the_toy_chain_has_the_three_protocols():
    assert_matches(ChainEnv())


def test_environment_is_the_union_of_the_three():
    assert members(Searchable) and set(members(Searchable)) == {*members(Episode),
                                                                *members(Reward)}
    union = [*members(Episode), *members(Reward), *members(Export)]
    assert sorted(members(Environment)) == sorted(union)  # and no name in two of them


class Bare:
    """Episode + Reward only: pick 0 or 1 twice; a 1 scores one more."""

    task_id = "bare"

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def actions(self, state: tuple[int, ...]) -> list[int]:
        return [0, 1]

    def step(self, state: tuple[int, ...], action: int) -> tuple[int, ...]:
        return (*state, action)

    def is_terminal(self, state: tuple[int, ...]) -> bool:
        return len(state) == 2

    def rollout_action(self, state: tuple[int, ...], rng: random.Random) -> int:
        return rng.randrange(2)

    def score(self, state: tuple[int, ...]) -> float:
        return 1.0 + sum(state)

    def step_scores(self, state: tuple[int, ...]) -> list[float]:
        return [1.0 + a for a in state]

    def baseline_score(self) -> float:
        return 1.0

    def baseline_step_scores(self) -> list[float]:
        return [1.0, 1.0]


def test_an_episode_and_a_reward_are_enough_to_search(tmp_path):
    env = Bare()
    assert isinstance(env, Searchable) and not isinstance(env, Export)
    log = EventLog(tmp_path / "events.jsonl")
    tree = Explorer(env, ExploreOptions(simulations=20, seed=0), log).run()
    first = [tree.nodes[c] for c in tree.root.children]
    assert [n.label for n in first] == ["0", "1"]
    assert first[1].q() > first[0].q() >= 1.0  # a 1 first wins more than a 0 first
    assert [tree.nodes[n].action for n in tree.best_path()[1:]] == [1, 1]
    assert tree.root.prompt is None and first[0].completion is None
    assert tree.attrs["tools"] is None
    resumed = Explorer(env, ExploreOptions(simulations=20, seed=0), log).run()
    assert resumed.to_json() == tree.to_json()  # replayed from the log alone
    rows, stats = extract_pairs(tree.to_graph())
    assert rows == [] and stats.no_prompt > 0  # nothing exported, so no pairs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_class_missing_a_method_is_not_an_instance(protocol):
    for name in members(protocol):
        methods = {n: getattr(ChainEnv, n) for n in members(Environment) if n != name}
        partial = type("Partial", (), methods)()
        assert not isinstance(partial, protocol), name
        assert not isinstance(partial, Environment), name
        if protocol is not Export:
            with pytest.raises(TypeError, match=name):
                Explorer(partial, ExploreOptions(simulations=1))
        else:  # half an export is a mistake, not a search without one
            with pytest.raises(TypeError, match=f"lacks {name}"):
                Explorer(partial, ExploreOptions(simulations=1))
