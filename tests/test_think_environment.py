"""The think agent as an explorable environment (act, or think with tool X, at each turn).

SIMULATION: every run here is on the simulated airline world, with ``sim:airline-oracle``
(a simulated model that replays each task's gold script) or hand-scripted test models.
Scores are the world's exact-database check; nothing here measures a language model.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from stepwise.agents.think.environment import ThinkEnvironment, TurnState
from stepwise.errors import StepwiseError
from stepwise.llm.cache import CachingChatModel
from stepwise.llm.messages import training_dicts
from stepwise.search.environment import Environment
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import explore_tasks
from stepwise.sim.airline.oracle import AirlineOracleChatModel
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ScriptedChatModel, ai

REFUSAL = "cancel-late-no-insurance"  # policy_refusal: the right outcome is no change
SUCCESS = "cancel-insured"  # gold: get_user, then cancel_reservation


@pytest.fixture()
def oracle() -> CachingChatModel:
    return CachingChatModel(model=AirlineOracleChatModel())


def play(env: ThinkEnvironment, state: TurnState, actions) -> TurnState:
    for action in actions:
        if env.is_terminal(state):
            break
        state = env.step(state, action)
    return state


def run_to_end(env: ThinkEnvironment, state: TurnState, action: str = "act") -> TurnState:
    return play(env, state, itertools.repeat(action, env.max_turns))


def new_message(before: TurnState, after: TurnState) -> AIMessage:
    message = after.messages[len(before.messages)]
    assert isinstance(message, AIMessage)
    return message


def status_of(env: ThinkEnvironment, state: TurnState) -> str:
    return env.episode(state).world.state()["reservations"]["4WQ150"]["status"]


# -- the state and the actions ------------------------------------------------------------


def test_initial_state_actions_and_labels(oracle):
    env = ThinkEnvironment(SUCCESS, oracle, think_tools=("think", "verify"))
    assert isinstance(env, Environment)
    state = env.initial_state()
    assert isinstance(state.messages[0], SystemMessage)
    assert state.messages[0].content == env.policy
    assert isinstance(state.messages[1], HumanMessage) and state.messages[1].content == env.request
    assert (state.turns, state.done, env.is_terminal(state)) == (0, False, False)
    assert env.actions(state) == ["act", "think:think", "think:verify"]
    assert [env.action_label(a) for a in env.actions(state)] == ["act", "T:think", "T:verify"]
    names = [schema["function"]["name"] for schema in env.tool_schemas()]
    assert names[-2:] == ["think", "verify"] and "cancel_reservation" in names
    verify = next(s for s in env.tool_schemas() if s["function"]["name"] == "verify")
    assert "transcript" not in verify["function"]["parameters"]["properties"]  # injected
    assert env.decision_prompt(state) == [
        {"role": "system", "content": env.policy}, {"role": "user", "content": env.request}]


def test_bad_configuration_and_input_are_clear_errors(oracle):
    with pytest.raises(StepwiseError, match="unknown airline task"):
        ThinkEnvironment("no-such-task", oracle)
    with pytest.raises(StepwiseError, match="unknown world"):
        ThinkEnvironment(SUCCESS, oracle, world="moon")
    with pytest.raises(StepwiseError, match="unknown think tool"):
        ThinkEnvironment(SUCCESS, oracle, think_tools=("ponder",))
    env = ThinkEnvironment(SUCCESS, oracle)
    with pytest.raises(StepwiseError, match="unknown action"):
        env.step(env.initial_state(), "think:verify")  # not one of this environment's tools
    done = run_to_end(env, env.initial_state())
    assert env.actions(done) == []
    with pytest.raises(StepwiseError, match="ended"):
        env.step(done, "act")


# -- stepping with the oracle (simulation) ------------------------------------------------


@pytest.mark.parametrize("task_id", [SUCCESS, REFUSAL, "cancel-and-rebook"])
def test_acting_throughout_plays_the_gold_script_and_succeeds(oracle, task_id):
    env = ThinkEnvironment(task_id, oracle)
    state = run_to_end(env, env.initial_state())
    gold = [a.name for a in env.task.actions]
    assert [name for name, _ in env.successful_calls(state)] == ["get_user", *gold]
    assert state.done and state.turns == len(gold) + 2  # get_user, the actions, the answer
    assert isinstance(state.messages[-1], AIMessage) and not state.messages[-1].tool_calls
    assert env.score(state) == 1.0 and env.check(state)["differences"] == []
    assert env.step_scores(state) == [1.0] * state.turns
    assert env.baseline_score() == 1.0
    assert env.baseline_step_scores() == [1.0] * env.max_turns  # covers any explored depth


def test_a_half_done_episode_scores_zero(oracle):
    env = ThinkEnvironment(SUCCESS, oracle)
    after_read = env.step(env.initial_state(), "act")
    assert env.score(after_read) == 0.0
    assert env.check(after_read)["differences"]


def test_thinking_first_then_acting_still_refuses_correctly(oracle):
    env = ThinkEnvironment(REFUSAL, oracle)
    thought = env.step(env.initial_state(), "think:think")
    call = new_message(env.initial_state(), thought).tool_calls[0]
    assert call["name"] == "think" and "Policy check" in call["args"]["thought"]
    reply = thought.messages[-1]
    assert isinstance(reply, ToolMessage) and reply.status != "error"
    assert reply.content == "Thought noted." and reply.tool_call_id == call["id"]
    assert (thought.turns, thought.done) == (1, False)
    final = run_to_end(env, thought)
    assert "can't do that" in final.messages[-1].content
    assert env.score(final) == 1.0


def test_think_turn_binds_and_asks_for_only_that_tool():
    model = ScriptedChatModel(answers=[ai("", ("think", {"thought": "Check the rules."}))])
    env = ThinkEnvironment(SUCCESS, model, think_tools=("think", "verify"))
    env.step(env.initial_state(), "think:think")
    asked = model.calls[-1]
    assert asked["tools"] == ["think"]
    assert asked["kwargs"]["tool_choice"] == {"type": "function", "function": {"name": "think"}}
    loose = ScriptedChatModel(answers=[ai("", ("think", {"thought": "hm"}))])
    ThinkEnvironment(SUCCESS, loose, force_think=False).step(
        ThinkEnvironment(SUCCESS, loose).initial_state(), "think:think")
    assert loose.calls[-1]["tools"] == ["think"] and "tool_choice" not in loose.calls[-1]["kwargs"]


def test_a_text_answer_at_a_think_turn_is_the_answer_and_ends_the_episode(oracle):
    """The documented choice: the oracle has no think step on a task it can do, so with
    only ``think`` bound it answers in text; that answer ends the episode (here a failure,
    since nothing was cancelled)."""
    env = ThinkEnvironment(SUCCESS, oracle)
    state = env.step(env.initial_state(), "think:think")
    assert state.done and state.turns == 1
    assert not new_message(env.initial_state(), state).tool_calls
    assert env.decision_prompt(state)[-1]["role"] == "assistant"  # only a finished state does
    assert env.score(state) == 0.0


def test_a_prompt_defined_think_tool_runs_with_the_transcript_and_policy():
    model = ScriptedChatModel(answers=[ai("", ("verify", {"request": "May I cancel 4WQ150?"}))])
    thinker = RespondingChatModel(respond=lambda m, t: "Yes: it has travel insurance.")
    env = ThinkEnvironment(SUCCESS, model, think_tools=("think", "verify"), think_model=thinker)
    state = env.step(env.initial_state(), "think:verify")
    reply = state.messages[-1]
    assert isinstance(reply, ToolMessage) and reply.status != "error"
    assert reply.content == "Yes: it has travel insurance."
    assert reply.artifact["tool"] == "verify" and not state.done
    [asked] = thinker.calls  # the thinking call: the filled-in prompt, with no tools
    prompt = asked["messages"][0].content
    assert asked["tools"] == [] and "May I cancel 4WQ150?" in prompt
    assert env.request in prompt and "Airline agent policy" in prompt


def test_forks_from_one_state_evolve_independently(oracle):
    env = ThinkEnvironment(SUCCESS, oracle)
    parent = env.step(env.initial_state(), "act")  # get_user
    snapshot = (len(parent.messages), parent.turns, parent.done)
    acted = env.step(parent, "act")  # cancel_reservation
    answered = env.step(parent, "think:think")  # a text answer: ends, nothing cancelled
    again = env.step(parent, "act")
    assert (len(parent.messages), parent.turns, parent.done) == snapshot
    assert acted.messages[:len(parent.messages)] == parent.messages  # a shared prefix
    assert status_of(env, parent) == "active"
    assert status_of(env, acted) == "cancelled" and status_of(env, again) == "cancelled"
    assert status_of(env, answered) == "active"
    assert [m.content for m in again.messages] == [m.content for m in acted.messages]
    finished = run_to_end(env, acted)
    assert env.score(finished) == 1.0 and env.score(answered) == 0.0
    assert status_of(env, parent) == "active"  # stepping the forks never touched the parent


@pytest.mark.parametrize("task_id", [REFUSAL, SUCCESS])
def test_the_decision_completion_is_the_message_the_step_appends(oracle, task_id):
    env = ThinkEnvironment(task_id, oracle, think_tools=("think", "verify"))
    state = env.initial_state()
    while not env.is_terminal(state):
        for each in env.actions(state):
            completion = env.decision_completion(state, each)
            assert completion == training_dicts([new_message(state, env.step(state, each))])
            assert all(isinstance(row["content"], str) for row in completion)
            for call in completion[0].get("tool_calls", []):
                assert isinstance(call["function"]["arguments"], str)
        assert env.decision_prompt(state)[-1]["role"] in ("user", "tool")
        state = env.step(state, "act")


def sampling_model() -> RespondingChatModel:
    """A model that answers differently each time it is asked."""
    counter = itertools.count()
    return RespondingChatModel(
        respond=lambda messages, tools: ai("", ("think", {"thought": f"sample {next(counter)}"})))


def test_a_sampling_model_steps_with_the_completion_it_exported():
    """The step after ``decision_completion`` appends the exported message, not a fresh
    sample; a state with the same messages (rebuilt, say) gets it too, another state a new
    sample."""
    env = ThinkEnvironment(SUCCESS, sampling_model())
    state = env.initial_state()
    completion = env.decision_completion(state, "think:think")
    stepped = env.step(state, "think:think")
    assert training_dicts([new_message(state, stepped)]) == completion
    rebuilt = env.step(env.initial_state(), "think:think")  # equal messages: the same reply
    assert new_message(state, rebuilt).tool_calls == new_message(state, stepped).tool_calls
    later = env.step(stepped, "think:think")
    assert new_message(stepped, later).tool_calls[0]["args"] != \
        new_message(state, stepped).tool_calls[0]["args"]


def test_asking_for_the_export_does_not_change_the_next_step():
    """Exporting a decision, before or after its step, leaves what the steps do as it is."""
    def turns(asks: list[str]) -> list[dict]:
        env = ThinkEnvironment(SUCCESS, sampling_model())
        state = env.initial_state()
        seen = []
        for ask in asks:
            if ask == "export":
                seen.append(env.decision_completion(state, "think:think")[0])
            else:
                seen.append(training_dicts([new_message(state, env.step(state, "think:think"))])[0])
        return seen

    plain = turns(["step", "step"])
    assert plain[0] == plain[1]  # one request, one reply
    assert turns(["export", "step", "step"]) == [plain[0]] * 3
    assert turns(["step", "export", "step"]) == [plain[0]] * 3


# -- the gold script's best step ----------------------------------------------------------


def test_optimal_action_thinks_right_before_a_refusal(oracle):
    user = ThinkEnvironment(REFUSAL, oracle).task.user_id
    model = ScriptedChatModel(answers=[ai("", ("think", {"thought": "too early"})),
                                       ai("", ("get_user", {"user_id": user})),
                                       ai("", ("think", {"thought": "No insurance: refuse."})),
                                       ai("Sorry, the policy forbids it.")])
    env = ThinkEnvironment(REFUSAL, model)
    start = env.initial_state()
    early = env.step(start, "think:think")
    read = env.step(early, "act")
    thought = env.step(read, "think:think")
    answered = env.step(thought, "act")
    # The think before the read is not the think before the refusal.
    assert [env.optimal_action(s) for s in (start, early, read, thought, answered)] == \
        ["act", "act", "think:think", "act", None]
    assert env.score(answered) == 1.0
    verify_only = ThinkEnvironment(REFUSAL, oracle, think_tools=("verify",))
    assert verify_only.optimal_action(read) is None  # the gold script's think is not here


def test_optimal_action_is_act_on_a_task_to_do(oracle):
    env = ThinkEnvironment("cancel-and-rebook", oracle)
    state = env.initial_state()
    while not env.is_terminal(state):
        assert env.optimal_action(state) == "act"
        state = env.step(state, "act")


# -- a misbehaving model ------------------------------------------------------------------


def test_bad_calls_become_error_messages_not_crashes():
    model = ScriptedChatModel(answers=[
        ai("", invalid=['{"user_id": ']),  # malformed
        ai("", ("no_such_tool", {})),  # unknown tool
        ai("", ("cancel_reservation", {})),  # missing arguments
        ai("", ("get_user", {"user_id": "nobody"})),  # the world refuses
        ai("", ("think", {"thought": "x"})),  # a think tool at an act turn is not bound
        ai("", ("get_user", {"user_id": "x"})),  # a world tool at a think turn
        ai("I give up."),
    ])
    env = ThinkEnvironment(SUCCESS, model, max_error_streak=7)  # every error, none stops it
    state = env.initial_state()
    kinds = []
    for action in ["act"] * 5 + ["think:think", "act"]:
        before = state
        state = env.step(state, action)
        replies = state.messages[len(before.messages) + 1:]
        kinds += [(r.status, (r.artifact or {}).get("error")) for r in replies]
        assert state.done == (action == "act" and before.turns == 6)
    assert kinds == [("error", kind) for kind in
                     ("malformed", "unknown_tool", "bad_arguments", "failed", "unknown_tool",
                      "unknown_tool")]
    assert env.successful_calls(state) == []
    assert env.score(state) == 0.0
    # The malformed call is exported as a call its error reply answers.
    prompt = env.decision_prompt(state)
    assert prompt[2]["tool_calls"][0]["id"] == prompt[3]["tool_call_id"]


def test_the_turn_limit_ends_an_episode():
    model = RespondingChatModel(respond=lambda m, t: ai("", ("get_user", {"user_id": "x"})))
    env = ThinkEnvironment(REFUSAL, model, max_turns=3)
    state = run_to_end(env, env.initial_state())
    assert (state.turns, state.done) == (3, True)
    assert env.step_scores(state) == [env.score(state)] * 3
    assert len(env.baseline_step_scores()) == 3


def test_call_ids_are_unique_in_an_episode(oracle):
    """The model repeats one id every turn; each reply must still answer one call."""
    user = ThinkEnvironment(SUCCESS, oracle).task.user_id
    model = RespondingChatModel(respond=lambda m, t: AIMessage(content="", tool_calls=[
        {"name": "get_user", "args": {"user_id": user}, "id": "same", "type": "tool_call"}]))
    env = ThinkEnvironment(SUCCESS, model, max_turns=3)
    state = run_to_end(env, env.initial_state())
    ids = [c["id"] for m in state.messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert len(set(ids)) == 3
    assert len(env.successful_calls(state)) == 3


# -- the explorer on it (simulation) ------------------------------------------------------


def test_the_explorer_prefers_acting_where_thinking_gives_up(oracle):
    env = ThinkEnvironment(SUCCESS, oracle)
    tree = Explorer(env, ExploreOptions(simulations=12, seed=0), env_name="think",
                    simulated=True).run()
    root = tree.root
    assert root.visits == 12 and root.optimal == "act"
    children = {tree.nodes[c].label: tree.nodes[c] for c in root.children}
    assert set(children) == {"act", "T:think"}
    assert children["T:think"].q() == 0.0  # the oracle answers without acting: a failure
    assert children["act"].q() > 0.0
    for node in tree.nodes.values():
        if node.prompt:
            assert node.prompt[-1]["role"] in ("user", "tool")


def test_the_explorer_on_a_refusal_task_finds_every_path_equal(oracle):
    env = ThinkEnvironment(REFUSAL, oracle)
    tree = Explorer(env, ExploreOptions(simulations=12, seed=0)).run()
    assert {tree.q(n) for n in tree.nodes if tree.nodes[n].visits} == {1.0}


def test_explore_tasks_writes_trees_and_pairs(oracle, tmp_path):
    def make_env(task_id):
        return ThinkEnvironment(task_id, oracle)

    report = explore_tasks([REFUSAL, SUCCESS], make_env, ExploreOptions(simulations=8),
                           tmp_path, env_name="think", simulated=True)
    assert (tmp_path / "trees" / f"{REFUSAL}.json").is_file()
    rows = [json.loads(line) for line in
            (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    # The refusal task gives no pair: the tools enforce the policy and the oracle always
    # refuses, so every path succeeds and every Q is 1. On the task to do, thinking makes
    # the oracle answer without acting (Q 0), acting goes on to succeed.
    assert {row["meta"]["task"] for row in rows} == {SUCCESS}
    assert report.pairs == len(rows) >= 1 and report.pair_stats["no_preference"] >= 1
    first = rows[0]
    assert (first["meta"]["chosen_action"], first["meta"]["rejected_action"]) == \
        ("act", "think:think")
    assert first["chosen"][0]["tool_calls"][0]["function"]["name"] == "get_user"
    assert first["rejected"][0]["content"].startswith("(simulated oracle)")
    assert first["prompt"][-1]["role"] == "user"
    assert {t["function"]["name"] for t in json.loads(first["tools"])} >= {"think", "get_user"}
    assert report.optimal_rates["chosen_is_best"] == 1.0


def test_a_zero_baseline_does_not_break_the_search():
    env = ThinkEnvironment(SUCCESS, RespondingChatModel(respond=lambda m, t: "No."))
    assert env.baseline_score() == 0.0
    tree = Explorer(env, ExploreOptions(simulations=4, seed=0)).run()
    assert tree.root.visits == 4 and tree.root.wins == 0.0


def test_rollout_action_is_uniform_and_seeded(oracle):
    env = ThinkEnvironment(SUCCESS, oracle, think_tools=("think", "verify"))
    state = env.initial_state()
    picks = [env.rollout_action(state, random.Random(seed)) for seed in range(60)]
    assert set(picks) == set(env.actions(state))
    assert picks == [env.rollout_action(state, random.Random(seed)) for seed in range(60)]


def test_sampled_act_turns_are_siblings_from_one_n_request(tmp_path):
    """Simulated airline world: with act_samples=3 the act turn is sampled three times in
    one request when the backend returns n generations, and the samples are siblings."""
    from langchain_core.outputs import ChatGeneration, ChatResult

    from stepwise.search.explorer import ExploreOptions, Explorer
    from stepwise.testing.responding import RespondingChatModel

    class Sampler(RespondingChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.calls.append({"kwargs": kwargs})
            n = kwargs.get("n") or 1
            return ChatResult(generations=[ChatGeneration(message=AIMessage(f"answer {j}"))
                                           for j in range(n)])

    model = Sampler(respond=lambda messages, tools: "unused")
    env = ThinkEnvironment("cancel-insured", model, act_samples=3)
    state = env.initial_state()
    assert env.actions(state) == ["act#0", "act#1", "act#2", "think:think"]
    completions = [env.decision_completion(state, a)[0]["content"] for a in env.actions(state)[:3]]
    assert completions == ["answer 0", "answer 1", "answer 2"]
    assert [c["kwargs"].get("n") for c in model.calls] == [3]  # one request for three samples
    assert env.step(state, "act#1").messages[-1].text == "answer 1"
    assert env.action_label("act#2") == "A2" and env.optimal_action(state) is None

    single = RespondingChatModel(respond=lambda messages, tools: "the same")
    fallback = ThinkEnvironment("cancel-insured", single, act_samples=2)
    assert len(fallback._samples(fallback.initial_state())) == 2
    assert [c["kwargs"].get("seed") for c in single.calls[-2:]] == [None, 1]
    tree = Explorer(ThinkEnvironment("cancel-insured", model, act_samples=3),
                    ExploreOptions(simulations=6)).run()
    assert {tree.nodes[c].label for c in tree.root.children} == {"A0", "A1", "A2", "T:think"}
