"""The think agent as an explorable environment: at each turn, act or think with tool X.

It satisfies ``stepwise.search.environment.Environment`` structurally (agents import no
search code). One environment is one world task (the airline simulation). A turn is one
model call plus the tool calls it makes; the action says which tools the call gets:

- ``"act"``: only the world's tools. The calls run on the world as this state left it
  (errors, unknown tools and malformed calls come back as error tool messages). A reply
  with no tool call is the agent's answer and ends the episode.
- ``"think:<tool>"``: only that think tool, and the call asks for it (``tool_choice``;
  ``force_think=False`` only binds it). A model that still answers in text has answered:
  the episode ends, as any text reply ends the think agent's loop (``ThinkSteps``). The
  text is not kept as a mid-episode turn because the next prompt would then end in an
  assistant message, which breaks the preference-pair format and strictly alternating
  chat templates. A call to any other tool is an ``unknown_tool`` error message.

The turn itself is the think agent's (``ThinkSteps``, which its LangGraph graph drives
too): call ids unique in the episode, the think budget (once spent, the ``think:`` actions
are gone and a think call is refused), errors as context, and ``max_error_streak`` errors
in a row or ``max_turns`` turns end the episode.

A state (``TurnState``) is plain data: the message tuple (system policy, user request,
the turns so far), the run's counters, error streak, thoughts and status. The world's
database is not in it: it is rebuilt when needed from the messages by a fresh
``open_episode`` + ``Episode.restore`` (the world is deterministic and a refused call
changes nothing, so the replay of the successful calls is the database). Forking a state
copies a tuple of shared messages.

A decision's reply is remembered by its request (the state's messages and the action), so
``step`` and the export (``decision_completion``) see the same message whichever is asked
first, and asking for the export changes nothing a step does: a sampling model is asked
once per request.

Scores are 0/1 outcomes, the task's exact-database check, so the reward-to-go after every
step is the episode's score. The baseline is the all-``"act"`` policy.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool

from stepwise.agents.think.budget import ThinkBudget
from stepwise.agents.think.state import Counters, Status, ThinkState, Thought, add_counts
from stepwise.agents.think.steps import ThinkSteps
from stepwise.agents.think.worlds import Episode, open_episode
from stepwise.errors import ConfigError, StepwiseError
from stepwise.llm.messages import canonical_request, request_key, tool_schemas, training_dicts
from stepwise.llm.token_data import call_tokens
from stepwise.tools.think import PromptThinkTool, load_think_tools

ACT = "act"
THINK = "think:"
T = TypeVar("T")


@dataclass(frozen=True)
class TurnState:
    """Where an episode stands: the conversation so far, the run's counters, the error
    streak, the thoughts and the status (``running`` until the episode ends)."""

    messages: tuple[AnyMessage, ...]
    counts: Counters = field(default_factory=lambda: Counters())
    error_streak: int = 0
    thoughts: tuple[Thought, ...] = ()
    status: Status = "running"

    @property
    def turns(self) -> int:
        return self.counts.get("turns", 0)

    @property
    def done(self) -> bool:
        return self.status != "running"

    def as_state(self) -> ThinkState:
        """The state as the think agent's steps read it."""
        return ThinkState(messages=list(self.messages), counts=self.counts,
                          error_streak=self.error_streak, status=self.status)

    def updated(self, update: dict[str, Any]) -> TurnState:
        """This state with a step's update applied, as the agent's graph applies it."""
        return TurnState((*self.messages, *update.get("messages", ())),
                         add_counts(self.counts, update.get("counts", Counters())),
                         update.get("error_streak", self.error_streak),
                         (*self.thoughts, *update.get("thoughts", ())),
                         update.get("status", self.status))


class ThinkEnvironment:
    """One world task; at each turn the agent acts or thinks with one of its think tools."""

    def __init__(self, task_id: str, model: BaseChatModel, *, world: str = "airline",
                 think_tools: Sequence[str] = ("think",), think_model: BaseChatModel | None = None,
                 max_turns: int = 12, force_think: bool = True, act_samples: int = 1,
                 budget: ThinkBudget | None = None, max_error_streak: int = 3) -> None:
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
        # The template's tools give schemas and bindings; calls run on a restored world.
        self.world_tools: list[BaseTool] = list(template.tools)
        loaded = load_think_tools(list(think_tools), think_model)
        self.think_tools: dict[str, BaseTool] = {
            tool.name: tool.with_llm(think_model or model) if isinstance(tool, PromptThinkTool)
            else tool for tool in loaded}
        clash = sorted({t.name for t in self.world_tools} & set(self.think_tools))
        if clash:
            raise ConfigError(f"think tools named like world tools: {', '.join(clash)}")
        self.steps = ThinkSteps(model=model, tools={}, think_tools=self.think_tools,
                                budget=budget or ThinkBudget(), system_prompt=self.policy,
                                max_turns=max_turns, max_error_streak=max_error_streak)
        self.max_turns = max_turns
        # The tools each action binds, and the model with them bound.
        self._tools: dict[str, list[BaseTool]] = {ACT: self.world_tools} | {
            THINK + name: [tool] for name, tool in self.think_tools.items()}
        self._bound = {action: self.steps.bind(tools, tool_choice=action.removeprefix(THINK)
                                               if force_think and action != ACT else None)
                       for action, tools in self._tools.items()}
        # Replies by request (action, messages): see the module docstring.
        self._replies: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # -- the protocol -----------------------------------------------------------------

    def initial_state(self) -> TurnState:
        return TurnState((SystemMessage(self.policy), HumanMessage(self.request)))

    def actions(self, state: TurnState) -> list[str]:
        """Act (or its samples), then each think tool while the think budget lasts."""
        if self.is_terminal(state):
            return []
        acts = [ACT] if self.act_samples == 1 else [f"{ACT}#{j}" for j in range(self.act_samples)]
        thinks = [] if self.steps.think_spent(state.counts) else \
            [a for a in self._tools if a != ACT]
        return [*acts, *thinks]

    def step(self, state: TurnState, action: str) -> TurnState:
        """One turn: the model call ``action`` allows, then the tool calls it made."""
        if self.is_terminal(state):
            raise StepwiseError(f"{self.task_id}: the episode has ended; there is no next turn")
        reply = self._reply(state, action)
        kind = action.split("#")[0]
        answered = state.updated(self.steps.model_turn(state.as_state(), reply,
                                                       self._tools[kind]))
        if answered.done:
            return answered
        tools = ((self.episode(state).tools if reply.tool_calls else []) if kind == ACT
                 else self._tools[kind])
        return answered.updated(self.steps.tools_turn(
            answered.as_state(), {tool.name: tool for tool in tools}))

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
        """The assistant message ``step(state, action)`` appends (the one remembered reply)."""
        message, _ = self.steps.tidy(state.as_state(), self._reply(state, action))
        return training_dicts([message])

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
        """The model's raw reply at ``state`` to the call ``action`` allows, asked once per
        request: a later ask for the same messages and action gets the same message."""
        kind, _, sample = action.partition("#")
        if kind == ACT and sample:
            return self._samples(state)[int(sample)]
        if action not in self._bound:
            raise StepwiseError(f"unknown action {action!r} (known: {', '.join(self._bound)})")
        if kind != ACT and self.steps.think_spent(state.counts):
            raise StepwiseError(f"{action}: the think budget is spent; it is no action here")
        return self._remembered(state, action, lambda: self.steps.ask(
            state.as_state(), self._bound[action]))

    def _samples(self, state: TurnState) -> list[AIMessage]:
        """The act turn sampled ``act_samples`` times for one state: one request with n > 1
        where the backend returns n generations, else one request per missing sample.
        Remembered per request, so every sibling and its step see the same messages."""
        def sample() -> list[AIMessage]:
            prompt = self.steps.prompt(state.messages)
            bound = dict(getattr(self._bound[ACT], "kwargs", {}))
            result = self.model.generate([prompt], n=self.act_samples, **bound)
            messages = [g.message for g in result.generations[0]][:self.act_samples]
            while len(messages) < self.act_samples:  # the backend ignored n
                messages.append(self._bound[ACT].invoke(prompt, seed=len(messages)))
            return messages

        return self._remembered(state, ACT + "#", sample)

    def _remembered(self, state: TurnState, action: str, ask: Callable[[], T]) -> T:
        """``ask()``'s answer for this request, asked only when none is remembered yet (a
        racing thread's answer, if first, is the one kept)."""
        key = (action, request_key(canonical_request(list(state.messages), {})))
        with self._lock:
            if key in self._replies:
                return self._replies[key]
        answer = ask()
        with self._lock:
            return self._replies.setdefault(key, answer)
