"""The think agent's loop as a LangGraph state machine: model -> tools -> model ... -> answer.

Think tools sit beside the ordinary tools; the model decides when a step needs thought.
Three things make this more than a ReAct loop:

- the think budget: once spent, think tools are unbound from the model and a note in the
  tool result that spent it says so;
- errors as context: malformed calls, unknown tools, bad arguments and failing tools come
  back as error results; after ``max_error_streak`` errors in a row the run stops, or,
  with ``ask_human`` on, interrupts for a person (``interrupt()``, resumed with
  ``Command(resume=answer)``);
- a thought channel: think-tool results and (stripped from history) native reasoning.

``ask_human`` calls are answered in their own node so that resuming after the interrupt
re-runs only that node, never the tools that ran before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel, Field

from stepwise.agents.think.budget import NativeThinking, ThinkBudget
from stepwise.agents.think.state import Counters, ThinkState, Thought
from stepwise.tools.call_ids import unique_call_ids
from stepwise.tools.executor import error_message, is_error, malformed_call_messages, run_tool_call
from stepwise.tools.think.prompted import PromptThinkTool
from stepwise.tools.think.tokens import estimate_tokens

ASK_HUMAN = "ask_human"


class AskHumanArgs(BaseModel):
    question: str = Field(description="The question for the human, with what they need to know.")


def _never_run(question: str) -> str:
    raise RuntimeError("ask_human is answered by the agent's human node, never run")


ASK_HUMAN_TOOL = StructuredTool.from_function(
    _never_run, name=ASK_HUMAN, args_schema=AskHumanArgs,
    description="Ask a human for help or a decision you may not take alone. The run pauses "
                "until they answer.")


@dataclass
class ThinkLoop:
    """Everything the graph's nodes use that is not state: models, tools, limits."""

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

    # -- the model's turn -------------------------------------------------------------

    def bound_tools(self, counts: Counters) -> list[BaseTool]:
        spent = self.budget.spent(counts.get("think_calls", 0), counts.get("think_tokens", 0))
        think = [] if spent else list(self.think_tools.values())
        return [*self.tools.values(), *think, *([ASK_HUMAN_TOOL] if self.ask_human else [])]

    def call_model(self, state: ThinkState) -> dict[str, Any]:
        counts = state.get("counts", {})
        turn = counts.get("turns", 0) + 1
        tools = self.bound_tools(counts)
        runnable = self.model.bind_tools(tools) if tools else self.model
        history = [SystemMessage(self.system_prompt)] if self.system_prompt else []
        message = runnable.invoke(history + state["messages"], **self.native.call_kwargs(self.model))
        assert isinstance(message, AIMessage)
        message, thoughts = self._tidy(message, turn, state["messages"])
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

    def _tidy(self, message: AIMessage, turn: int,
              history: Sequence[AnyMessage]) -> tuple[AIMessage, list[Thought]]:
        """Give every call an id unique in the run; move native reasoning to the thoughts.

        Each reply must answer exactly one call, and servers may leave ids out or (like
        Hermes parsers hashing the call text) repeat them across turns.
        """
        message = unique_call_ids(message, history, turn)
        extra = dict(message.additional_kwargs)
        reasoning = extra.pop("reasoning_content", None) if self.strip_reasoning else None
        thoughts: list[Thought] = []
        if reasoning:
            details = (message.usage_metadata or {}).get("output_token_details") or {}
            tokens = details.get("reasoning") or estimate_tokens(reasoning)
            thoughts.append(Thought(turn=turn, tool="native", request="", thought=reasoning,
                                    tokens=tokens))
        return message.model_copy(update={"additional_kwargs": extra}), thoughts

    # -- the tools' turn --------------------------------------------------------------

    def run_tools(self, state: ThinkState) -> dict[str, Any]:
        message = last_ai_message(state)
        counts = state.get("counts", {})
        think_calls, think_tokens = counts.get("think_calls", 0), counts.get("think_tokens", 0)
        turn = counts.get("turns", 0)
        available = {tool.name: tool for tool in self.bound_tools(counts)}
        injected = {name: {"transcript": state["messages"], "policy": self.system_prompt}
                    for name, tool in self.think_tools.items()
                    if isinstance(tool, PromptThinkTool)}
        replies: list[ToolMessage] = []
        thoughts: list[Thought] = []
        tokens_in = tokens_out = 0
        for call in message.tool_calls:
            if call["name"] == ASK_HUMAN and self.ask_human:
                continue  # answered by the human node
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
        if streak >= self.max_error_streak and not self.ask_human:
            update["status"] = "too_many_errors"
        elif turn >= self.max_turns and not waiting:
            update["status"] = "turn_limit"  # with a question pending, the human node ends it
        return update

    def after_tools(self, state: ThinkState) -> str:
        if state.get("status") in ("too_many_errors", "turn_limit"):
            return END
        if self.ask_human and (unanswered_questions(last_ai_message(state), replies_since_ai(state))
                               or state.get("error_streak", 0) >= self.max_error_streak):
            return "human"
        return "model"

    # -- the human's turn -------------------------------------------------------------

    def ask_human_node(self, state: ThinkState) -> dict[str, Any]:
        message = last_ai_message(state)
        replies: list[Any] = []
        for call in unanswered_questions(message, replies_since_ai(state)):
            question = call["args"].get("question") if isinstance(call["args"], dict) else None
            answer = interrupt({"reason": "ask_human", "question": question or str(call["args"])})
            replies.append(ToolMessage(str(answer), tool_call_id=call.get("id") or "",
                                       name=ASK_HUMAN))
        if state.get("error_streak", 0) >= self.max_error_streak:
            errors = [m.text for m in state["messages"]
                      if isinstance(m, ToolMessage) and is_error(m)][-self.max_error_streak:]
            answer = interrupt({"reason": "too_many_errors",
                                "question": f"The agent's last {len(errors)} tool calls failed. "
                                            "How should it go on?", "errors": errors})
            replies.append(HumanMessage(f"(A human stepped in after {len(errors)} failed tool "
                                        f"calls.) {answer}"))
        update: dict[str, Any] = {"messages": replies, "error_streak": 0}
        if state.get("counts", {}).get("turns", 0) >= self.max_turns:
            update["status"] = "turn_limit"
        return update

    def after_human(self, state: ThinkState) -> str:
        return END if state.get("status") == "turn_limit" else "model"

    def after_model(self, state: ThinkState) -> str:
        return END if state.get("status") == "answered" else "tools"

    def graph(self) -> StateGraph:
        graph = StateGraph(ThinkState)
        graph.add_node("model", self.call_model)
        graph.add_node("tools", self.run_tools)
        graph.add_node("human", self.ask_human_node)
        graph.add_edge(START, "model")
        graph.add_conditional_edges("model", self.after_model, ["tools", END])
        graph.add_conditional_edges("tools", self.after_tools, ["model", "human", END])
        graph.add_conditional_edges("human", self.after_human, ["model", END])
        return graph


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
