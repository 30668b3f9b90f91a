"""The think agent as an explorable environment: at each turn, act or think with tool X.

It satisfies ``stepwise.search.environment.Environment`` structurally (agents import no
search code). One environment is one world task (the airline simulation). A turn is one
model call plus the tool calls it makes; the action says which tools the call gets:

- ``"act"``: only the world's tools. The calls run on the world as this state left it
  (errors, unknown tools and malformed calls come back as error tool messages). A reply
  with no tool call is the agent's answer and ends the episode.
- ``"think:<tool>"``: only that think tool, and the call asks for it (``tool_choice``;
  ``force_think=False`` only binds it). A model that still answers in text has answered:
  the episode ends, as any text reply ends the think agent's loop (``ThinkLoop``). The
  text is not kept as a mid-episode turn because the next prompt would then end in an
  assistant message, which breaks the preference-pair format and strictly alternating
  chat templates. A call to any other tool is an ``unknown_tool`` error message.

Every turn counts against ``max_turns``; reaching it ends the episode.

A state (``TurnState``) is plain data: the message tuple (system policy, user request,
the turns so far), the turn count and a done flag. The world's database is not in it: it
is rebuilt when needed from the messages by a fresh ``open_episode`` + ``Episode.restore``
(the world is deterministic and a refused call changes nothing, so the replay of the
successful calls is the database). Forking a state copies a tuple of shared messages.

Scores are 0/1 outcomes, the task's exact-database check, so the reward-to-go after every
step is the episode's score. The baseline is the all-``"act"`` policy.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any, NamedTuple

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool

from stepwise.agents.think.worlds import Episode, open_episode
from stepwise.errors import ConfigError, StepwiseError
from stepwise.llm.messages import tool_schemas, training_dicts
from stepwise.llm.token_data import call_tokens
from stepwise.tools.call_ids import unique_call_ids
from stepwise.tools.executor import run_tool_calls
from stepwise.tools.think import PromptThinkTool, load_think_tools

ACT = "act"
THINK = "think:"


class TurnState(NamedTuple):
    """Where an episode stands: the conversation so far, turns taken, and whether it ended."""

    messages: tuple[AnyMessage, ...]
    turns: int = 0
    done: bool = False


class ThinkEnvironment:
    """One world task; at each turn the agent acts or thinks with one of its think tools."""

    def __init__(self, task_id: str, model: BaseChatModel, *, world: str = "airline",
                 think_tools: Sequence[str] = ("think",), think_model: BaseChatModel | None = None,
                 max_turns: int = 12, force_think: bool = True, act_samples: int = 1) -> None:
        if max_turns < 1:
            raise ConfigError("max_turns must be at least 1")
        if act_samples < 1:
            raise ConfigError("act_samples must be at least 1")
        self.model = model
        self.act_samples = act_samples  # > 1: sampled act turns are sibling actions
        template = open_episode(world, task_id)  # an unknown world or task is a clear error
        self.task_id = task_id
        self.world = world
        self.task = template.task
        self.policy = template.policy
        self.request = template.request
        self.max_turns = max_turns
        # The template's tools give schemas and bindings; calls run on a restored world.
        self.world_tools: list[BaseTool] = list(template.tools)
        loaded = load_think_tools(list(think_tools), think_model)
        self.think_tools: dict[str, BaseTool] = {
            tool.name: tool.with_llm(think_model or model) if isinstance(tool, PromptThinkTool)
            else tool for tool in loaded}
        clash = sorted({t.name for t in self.world_tools} & set(self.think_tools))
        if clash:
            raise ConfigError(f"think tools named like world tools: {', '.join(clash)}")
        self._bound = {ACT: model.bind_tools(self.world_tools)} | {
            THINK + name: model.bind_tools([tool], tool_choice=name if force_think else None)
            for name, tool in self.think_tools.items()}
        # Replies fetched for decision_completion, so that the step taking the same action
        # at the same state appends that very message (a sampling model would differ).
        self._replies: dict[tuple[int, str], tuple[TurnState, Any]] = {}
        self._lock = threading.Lock()

    # -- the protocol -----------------------------------------------------------------

    def initial_state(self) -> TurnState:
        return TurnState((SystemMessage(self.policy), HumanMessage(self.request)))

    def actions(self, state: TurnState) -> list[str]:
        if self.is_terminal(state):
            return []
        acts = [ACT] if self.act_samples == 1 else [f"{ACT}#{j}" for j in range(self.act_samples)]
        return [*acts, *(a for a in self._bound if a != ACT)]

    def step(self, state: TurnState, action: str) -> TurnState:
        """One turn: the model call ``action`` allows, then the tool calls it made."""
        if self.is_terminal(state):
            raise StepwiseError(f"{self.task_id}: the episode has ended; there is no next turn")
        reply = self._reply(state, action)
        if action.split("#")[0] == ACT:
            tools = self.episode(state).tools if reply.tool_calls else []
        else:
            tools = [self.think_tools[action.removeprefix(THINK)]]
        transcript = [m for m in state.messages if not isinstance(m, SystemMessage)]
        injected = {name: {"transcript": transcript, "policy": self.policy}
                    for name, tool in self.think_tools.items() if isinstance(tool, PromptThinkTool)}
        results = run_tool_calls(reply, tools, injected)
        turns = state.turns + 1
        answered = not reply.tool_calls and not reply.invalid_tool_calls
        return TurnState((*state.messages, reply, *results), turns,
                         answered or turns >= self.max_turns)

    def is_terminal(self, state: TurnState) -> bool:
        return state.done

    def score(self, state: TurnState) -> float:
        """1.0 when the world as this state left it is the task's gold database, else 0.0."""
        outcome = self.check(state)
        return 1.0 if outcome and outcome["success"] else 0.0

    def step_scores(self, state: TurnState) -> list[float]:
        """The reward-to-go of a 0/1 outcome: the episode's score after every step."""
        return [self.score(state)] * state.turns

    def baseline_score(self) -> float:
        """The all-``act`` policy's score; may be 0.0 (the explorer divides by ``or 1.0``)."""
        return self._baseline

    def baseline_step_scores(self) -> list[float]:
        """The baseline's reward-to-go, one per possible turn (``max_turns`` of them).

        A 0/1 outcome's reward-to-go is the same after every step, so the list extends
        past the baseline's own episode length to any depth an explored episode reaches.
        """
        return [self._baseline] * self.max_turns

    @cached_property
    def _baseline(self) -> float:
        state = self.initial_state()
        while not self.is_terminal(state):
            state = self.step(state, ACT)
        return self.score(state)

    def rollout_action(self, state: TurnState, rng: random.Random) -> str:
        actions = self.actions(state)
        return actions[rng.randrange(len(actions))]

    def decision_prompt(self, state: TurnState) -> list[dict]:
        return training_dicts(state.messages)

    def decision_completion(self, state: TurnState, action: str) -> list[dict]:
        """The assistant message ``step(state, action)`` appends (remembered for that step)."""
        reply = self._reply(state, action)
        with self._lock:
            self._replies[(id(state), action)] = (state, reply)
        return training_dicts([reply])

    def decision_tokens(self, state: TurnState, action: str) -> dict[str, Any] | None:
        """The token record of the call behind ``decision_completion(state, action)`` (the
        same remembered reply), when the backend gave one."""
        return call_tokens(self._reply(state, action))

    def tool_schemas(self) -> list[dict]:
        return tool_schemas([*self.world_tools, *self.think_tools.values()])

    def optimal_action(self, state: TurnState) -> str | None:
        """The gold script's next step: ``think:think`` when it is the think before a
        refusal, else ``act``; None when the script needs a think tool that is not here.

        The gold script is the simulated oracle's (``stepwise.sim.airline.oracle.script``):
        read the user, then, on a task the policy forbids, think, then answer; on other
        tasks, the gold actions. It is the script's best step, not a score optimum: the
        airline tools enforce the policy, so a refusal task succeeds with or without the
        think.
        """
        if self.is_terminal(state):
            return None
        from stepwise.sim.airline.oracle import script

        gold = script(self.task, {t.name for t in self.world_tools} | {"think"})
        done = 0
        for name, args in self.successful_calls(state):
            if done < len(gold) and name == gold[done][0] and (
                    name == "think" or args == gold[done][1]):
                done += 1
        if done < len(gold) and gold[done][0] == "think":
            return THINK + "think" if "think" in self.think_tools else None
        return ACT if self.act_samples == 1 else None  # which sample is best is not known

    def action_label(self, action: str) -> str:
        if action.startswith(THINK):
            return "T:" + action.removeprefix(THINK)
        return action.replace(f"{ACT}#", "A")

    # -- the world and the model ------------------------------------------------------

    def episode(self, state: TurnState) -> Episode:
        """A fresh world restored to ``state`` (it is yours to change)."""
        episode = open_episode(self.world, self.task_id)
        episode.restore(state.messages)
        return episode

    def check(self, state: TurnState) -> dict[str, Any] | None:
        """The task check on the world as ``state`` left it: ``{"success", "differences"}``."""
        return self.episode(state).check()

    def successful_calls(self, state: TurnState) -> list[tuple[str, dict]]:
        """``(tool, args)`` of every call answered without an error, in order."""
        ok = {m.tool_call_id for m in state.messages
              if isinstance(m, ToolMessage) and m.status != "error"}
        return [(call["name"], call["args"]) for m in state.messages if isinstance(m, AIMessage)
                for call in m.tool_calls if call.get("id") in ok]

    def _reply(self, state: TurnState, action: str) -> AIMessage:
        if action.split("#")[0] == ACT and "#" in action:
            return self._samples(state)[int(action.split("#")[1])]
        if action not in self._bound:
            raise StepwiseError(f"unknown action {action!r} (known: {', '.join(self._bound)})")
        with self._lock:
            remembered = self._replies.get((id(state), action))
        if remembered is not None and remembered[0] is state:
            return remembered[1]
        message = self._bound[action].invoke(list(state.messages))
        if not isinstance(message, AIMessage):
            raise StepwiseError(f"the model answered a {type(message).__name__}, not a message")
        return unique_ids(message, state)


    def _samples(self, state: TurnState) -> list[AIMessage]:
        """The act turn sampled ``act_samples`` times for one state: one request with n > 1
        where the backend returns n generations, else one request per missing sample.
        Remembered per state, so every sibling and its step see the same messages."""
        key = (id(state), ACT + "#")
        with self._lock:
            remembered = self._replies.get(key)
        if remembered is not None and remembered[0] is state:
            return remembered[1]
        bound = dict(getattr(self._bound[ACT], "kwargs", {}))
        result = self.model.generate([list(state.messages)], n=self.act_samples, **bound)
        messages = [g.message for g in result.generations[0]][:self.act_samples]
        while len(messages) < self.act_samples:  # the backend ignored n
            messages.append(self._bound[ACT].invoke(list(state.messages),
                                                    seed=len(messages)))
        samples = [unique_ids(m, state) for m in messages]
        with self._lock:
            self._replies[key] = (state, samples)
        return samples


def unique_ids(message: AIMessage, state: TurnState) -> AIMessage:
    """``unique_call_ids`` in the episode so far, tagged with the coming turn's number: a
    rebuilt history gets the same ids."""
    return unique_call_ids(message, state.messages, state.turns + 1)
