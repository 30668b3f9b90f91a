"""One step object for the think agent: its LangGraph graph and its explorable environment
keep the same rules (think budget, error streak, call ids), because both drive ThinkSteps.

SIMULATION: the simulated airline world with hand-scripted test models; nothing here
measures a language model.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import SystemMessage

from stepwise.agents.think import ThinkAgent, ThinkBudget
from stepwise.agents.think.environment import ThinkEnvironment, TurnState
from stepwise.agents.think.metrics import RunMetrics
from stepwise.agents.think.worlds import open_episode
from stepwise.errors import StepwiseError
from stepwise.llm.messages import training_dicts
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ScriptedChatModel, ai

TASK = "cancel-insured"


def agent_run(model, **options):
    """The think agent's graph on a fresh world of the task: its run."""
    episode = open_episode("airline", TASK)
    agent = ThinkAgent(model, tools=episode.tools, system_prompt=episode.policy, **options)
    return agent.run(episode.request)


def conversation(state: TurnState) -> list[dict]:
    """The environment's episode as the agent keeps its history: without the system turn."""
    return training_dicts([m for m in state.messages if not isinstance(m, SystemMessage)])


def play(env: ThinkEnvironment, actions: list[str]) -> TurnState:
    state = env.initial_state()
    for action in actions:
        state = env.step(state, action)
    return state


def refused():
    """A model that asks for a user the world does not have, every turn."""
    return RespondingChatModel(respond=lambda m, t: ai("", ("get_user", {"user_id": "nobody"})))


def test_the_error_streak_ends_an_episode_as_it_ends_the_agents_run():
    run = agent_run(refused(), max_error_streak=2)
    env = ThinkEnvironment(TASK, refused(), max_error_streak=2)
    state = play(env, ["act", "act"])
    assert run.status == state.status == "too_many_errors"
    assert (state.done, state.turns, state.error_streak) == (True, 2, 2)
    assert env.actions(state) == []
    assert conversation(state) == training_dicts(run.messages)
    assert RunMetrics.from_counts(state.counts) == run.metrics


def script():
    """Think (spending a one-call budget), think again (refused), then answer."""
    return ScriptedChatModel(answers=[ai("", ("think", {"thought": "Check the insurance."})),
                                      ai("", ("think", {"thought": "Once more."})),
                                      ai("I will cancel it.")])


def test_the_think_budget_binds_refuses_and_counts_as_in_the_agents_run():
    budget = ThinkBudget(max_calls=1)
    run = agent_run(script(), budget=budget)
    env = ThinkEnvironment(TASK, script(), budget=budget)
    start = env.initial_state()
    assert env.actions(start) == ["act", "think:think"]
    thought = env.step(start, "think:think")
    assert "Think budget spent" in thought.messages[-1].text
    assert env.actions(thought) == ["act"]  # the think tools are no longer bound
    with pytest.raises(StepwiseError, match="think budget is spent"):
        env.step(thought, "think:think")
    refused_think = env.step(thought, "act")
    reply = refused_think.messages[-1]
    assert (reply.status, reply.artifact["error"]) == ("error", "budget_spent")
    assert refused_think.error_streak == 0  # it was bound when the model chose it
    final = env.step(refused_think, "act")
    assert run.status == final.status == "answered"
    assert conversation(final) == training_dicts(run.messages)
    assert RunMetrics.from_counts(final.counts) == run.metrics
    assert [t["thought"] for t in final.thoughts] == [t["thought"] for t in run.thoughts]
