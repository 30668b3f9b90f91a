"""One think-agent turn: the model's call, then the tool calls it made.

``ThinkSteps`` holds what is not state (models, tools, budget, limits) and turns one state
into the next; the LangGraph graph (graph.py) wires its steps into model -> tools -> model,
and the explorable environment (environment.py) drives the same steps, one turn per
decision, with the tools its action allows. So both keep the same rules:

- the think budget: once spent, think tools are not bound, a call to one is a
  ``budget_spent`` reply, and the tool result that spent it says so;
- errors as context: malformed calls, unknown tools, bad arguments and failing tools come
  back as error results; ``max_error_streak`` of them in a row stop the run (or, with
  ``ask_human`` on, hand it to a person: the graph's human node);
- call ids unique in the run, so each reply answers exactly one call;
- a thought channel: think-tool results and (stripped from history) native reasoning.

A state is read as a ``ThinkState`` mapping and each step returns an update to it: new
messages and thoughts to append, counters to add, the error streak and status to set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from stepwise.agents.think.budget import NativeThinking, ThinkBudget
from stepwise.agents.think.state import Counters, ThinkState, Thought
from stepwise.errors import ConfigError, StepwiseError
from stepwise.tools.call_ids import unique_call_ids
from stepwise.tools.executor import error_message, is_error, malformed_call_messages, run_tool_call
from stepwise.tools.think.prompted import PromptThinkTool
from stepwise.tools.think.tokens import estimate_tokens

ASK_HUMAN = "ask_human"
STOPPED = ("too_many_errors", "turn_limit")  # statuses a tools step may end a run with


class AskHumanArgs(BaseModel):
    question: str = Field(description="The question for the human, with what they need to know.")


def _never_run(question: str) -> str:
    raise RuntimeError("ask_human is answered by the agent's human node, never run")


ASK_HUMAN_TOOL = StructuredTool.from_function(
    _never_run, name=ASK_HUMAN, args_schema=AskHumanArgs,
    description="Ask a human for help or a decision you may not take alone. The run pauses "
                "until they answer.")


@dataclass
class ThinkSteps:
    """Models, tools and limits: everything a think turn uses that is not state."""

    model: BaseChatModel
    tools: dict[str, BaseTool]
    think_tools: dict[str, BaseTool]
    budget: ThinkBudget = field(default_factory=ThinkBudget)
    native: NativeThinking = field(default_factory=NativeThinking)
    system_prompt: str = ""
    ask_human: bool = False
    max_turns: int = 20
    max_error_streak: int = 3
    strip_reasoning: bool = True

    def __post_init__(self) -> None:
        if self.max_turns < 1 or self.max_error_streak < 1:
            raise ConfigError("max_turns and max_error_streak must be at least 1")

    # -- the model's turn -------------------------------------------------------------

    def think_spent(self, counts: Counters) -> bool:
        return self.budget.spent(counts.get("think_calls", 0), counts.get("think_tokens", 0))

    def bound_tools(self, counts: Counters) -> list[BaseTool]:
        """Every tool the model may call now: the think tools only while the budget lasts."""
        think = [] if self.think_spent(counts) else list(self.think_tools.values())
        return [*self.tools.values(), *think, *([ASK_HUMAN_TOOL] if self.ask_human else [])]

    def bind(self, tools: Sequence[BaseTool], tool_choice: str | None = None) -> Runnable:
        """The model with ``tools`` bound (and ``tool_choice`` asked for, when given)."""
        if not tools:
            return self.model
        if tool_choice is None:
            return self.model.bind_tools(tools)
        return self.model.bind_tools(tools, tool_choice=tool_choice)

    def prompt(self, messages: Sequence[AnyMessage]) -> list[AnyMessage]:
        """What the model is sent: the system prompt, then the conversation."""
        if not self.system_prompt:
            return list(messages)
        turns = [m for m in messages if not isinstance(m, SystemMessage)]
        return [SystemMessage(self.system_prompt), *turns]

    def ask(self, state: ThinkState, runnable: Runnable) -> AIMessage:
        """The model's raw reply to the conversation so far, through ``runnable``."""
        message = runnable.invoke(self.prompt(state["messages"]),
                                  **self.native.call_kwargs(self.model))
        if not isinstance(message, AIMessage):
            raise StepwiseError(f"the model answered a {type(message).__name__}, not a message")
        return message

    def tidy(self, state: ThinkState, message: AIMessage) -> tuple[AIMessage, list[Thought]]:
        """Give every call an id unique in the run; move native reasoning to the thoughts.

        Each reply must answer exactly one call, and servers may leave ids out or (like
        Hermes parsers hashing the call text) repeat them across turns. The ids depend only
        on the history, so a history rebuilt on resume gets the same ones.
        """
        turn = state.get("counts", {}).get("turns", 0) + 1
        message = unique_call_ids(message, state["messages"], turn)
        extra = dict(message.additional_kwargs)
        reasoning = extra.pop("reasoning_content", None) if self.strip_reasoning else None
        thoughts: list[Thought] = []
        if reasoning:
            details = (message.usage_metadata or {}).get("output_token_details") or {}
            tokens = details.get("reasoning") or estimate_tokens(reasoning)
            thoughts.append(Thought(turn=turn, tool="native", request="", thought=reasoning,
                                    tokens=tokens))
        return message.model_copy(update={"additional_kwargs": extra}), thoughts

    def model_turn(self, state: ThinkState, message: AIMessage,
                   tools: Sequence[BaseTool]) -> dict[str, Any]:
        """The update that appends the model's ``message`` (asked with ``tools`` bound)."""
        message, thoughts = self.tidy(state, message)
        usage = message.usage_metadata or {}
        called = {call["name"] for call in message.tool_calls}
        update: dict[str, Any] = {
            "messages": [message],
            "thoughts": thoughts,
            "counts": Counters(
                turns=1, turns_with_tools=int(bool(tools)),
                think_turns=int(bool(called & set(self.think_tools))),
                tokens_in=usage.get("input_tokens", 0), tokens_out=usage.get("output_tokens", 0),
                native_reasoning_tokens=sum(t["tokens"] for t in thoughts)),
        }
        if not message.tool_calls and not message.invalid_tool_calls:
            update["status"] = "answered"
        return update

    # -- the tools' turn --------------------------------------------------------------

    def tools_turn(self, state: ThinkState,
                   available: Mapping[str, BaseTool] | None = None) -> dict[str, Any]:
        """Run the last message's calls on ``available`` (default: the tools bound now).

        A think tool's call is refused once the budget is spent; the result that spends it
        says so. The error streak grows with each error reply and ends the run at
        ``max_error_streak`` (unless a human is asked); the last turn ends it too.
        """
        message = last_ai_message(state)
        counts = state.get("counts", {})
        think_calls, think_tokens = counts.get("think_calls", 0), counts.get("think_tokens", 0)
        turn = counts.get("turns", 0)
        if available is None:
            available = {tool.name: tool for tool in self.bound_tools(counts)}
        transcript = [m for m in state["messages"] if not isinstance(m, SystemMessage)]
        injected = {name: {"transcript": transcript, "policy": self.system_prompt}
                    for name, tool in self.think_tools.items()
                    if isinstance(tool, PromptThinkTool)}
        replies: list[ToolMessage] = []
        thoughts: list[Thought] = []
        tokens_in = tokens_out = 0
        for call in message.tool_calls:
            if call["name"] == ASK_HUMAN and self.ask_human:
                continue  # answered by the graph's human node
            if call["name"] in self.think_tools and self.budget.spent(think_calls, think_tokens):
                replies.append(error_message(
                    call.get("id") or "", call["name"], "budget_spent",
                    f"the think budget is spent ({self.budget.describe(think_calls, think_tokens)});"
                    " think tools are no longer available. Act or answer."))
                continue
            reply = run_tool_call(call, available, injected)
            if call["name"] in self.think_tools and not is_error(reply):
                artifact = reply.artifact or {}
                tokens = int(artifact.get("tokens", 0))
                think_calls += 1
                think_tokens += tokens
                usage = artifact.get("usage") or {}
                tokens_in += usage.get("input_tokens", 0)
                tokens_out += usage.get("output_tokens", 0)
                thoughts.append(Thought(turn=turn, tool=call["name"],
                                        request=str(artifact.get("request", "")),
                                        thought=str(artifact.get("thought", reply.text)),
                                        tokens=tokens))
                if self.budget.spent(think_calls, think_tokens):
                    reply = reply.model_copy(update={"content": (
                        f"{reply.text}\n\n(Think budget spent: "
                        f"{self.budget.describe(think_calls, think_tokens)}. The think tools are "
                        "no longer available; act or answer.)")})
            replies.append(reply)
        replies += malformed_call_messages(message)
        streak = state.get("error_streak", 0)
        for reply in replies:
            if (reply.artifact or {}).get("error") == "budget_spent":
                continue  # the model called a tool that was bound when it chose to
            streak = streak + 1 if is_error(reply) else 0
        waiting = unanswered_questions(message, replies) if self.ask_human else []
        update: dict[str, Any] = {
            "messages": replies,
            "thoughts": thoughts,
            "error_streak": streak,
            "counts": Counters(
                tool_calls=len(replies) + len(waiting), tool_errors=sum(map(is_error, replies)),
                think_calls=think_calls - counts.get("think_calls", 0),
                think_tokens=think_tokens - counts.get("think_tokens", 0),
                tokens_in=tokens_in, tokens_out=tokens_out),
        }
        if self.too_many_errors(streak) and not self.ask_human:
            update["status"] = "too_many_errors"
        elif turn >= self.max_turns and not waiting:
            update["status"] = "turn_limit"  # with a question pending, the human node ends it
        return update

    def too_many_errors(self, streak: int) -> bool:
        return streak >= self.max_error_streak


def last_ai_message(state: ThinkState) -> AIMessage:
    return next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))


def replies_since_ai(state: ThinkState) -> list[ToolMessage]:
    """The tool replies to the last assistant message (ids may repeat across turns)."""
    replies: list[ToolMessage] = []
    for message in reversed(state["messages"]):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, ToolMessage):
            replies.append(message)
    return replies


def unanswered_questions(message: AIMessage, replies: Sequence[ToolMessage]) -> list[dict]:
    """The ``ask_human`` calls of ``message`` that no reply answers yet."""
    done = {reply.tool_call_id for reply in replies}
    return [c for c in message.tool_calls if c["name"] == ASK_HUMAN and c.get("id") not in done]
