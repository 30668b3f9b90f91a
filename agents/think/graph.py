"""The think agent's loop as a LangGraph state machine: model -> tools -> model ... -> answer.

Think tools sit beside the ordinary tools; the model decides when a step needs thought.
The turn's rules (the think budget, errors as context, unique call ids, the thought
channel) are ``ThinkSteps``' (steps.py), which the explorable environment drives too; the
graph wires them into nodes and adds a person: with ``ask_human`` on, an ``ask_human``
call, or ``max_error_streak`` errors in a row, interrupts the run (``interrupt()``,
resumed with ``Command(resume=answer)``).

``ask_human`` calls are answered in their own node so that resuming after the interrupt
re-runs only that node, never the tools that ran before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from stepwise.agents.think.state import ThinkState
from stepwise.agents.think.steps import (
    ASK_HUMAN,
    ASK_HUMAN_TOOL,
    STOPPED,
    ThinkSteps,
    last_ai_message,
    replies_since_ai,
    unanswered_questions,
)
from stepwise.tools.executor import is_error

__all__ = ["ASK_HUMAN", "ASK_HUMAN_TOOL", "ThinkLoop"]


@dataclass
class ThinkLoop:
    """The graph's nodes over one ``ThinkSteps``: the model's, the tools' and the human's."""

    steps: ThinkSteps

    def call_model(self, state: ThinkState) -> dict[str, Any]:
        tools = self.steps.bound_tools(state.get("counts", {}))
        return self.steps.model_turn(state, self.steps.ask(state, self.steps.bind(tools)), tools)

    def run_tools(self, state: ThinkState) -> dict[str, Any]:
        return self.steps.tools_turn(state)

    def after_tools(self, state: ThinkState) -> str:
        if state.get("status") in STOPPED:
            return END
        if self.steps.ask_human and (
                unanswered_questions(last_ai_message(state), replies_since_ai(state))
                or self.steps.too_many_errors(state.get("error_streak", 0))):
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
        if self.steps.too_many_errors(state.get("error_streak", 0)):
            errors = [m.text for m in state["messages"]
                      if isinstance(m, ToolMessage) and is_error(m)][-self.steps.max_error_streak:]
            answer = interrupt({"reason": "too_many_errors",
                                "question": f"The agent's last {len(errors)} tool calls failed. "
                                            "How should it go on?", "errors": errors})
            replies.append(HumanMessage(f"(A human stepped in after {len(errors)} failed tool "
                                        f"calls.) {answer}"))
        update: dict[str, Any] = {"messages": replies, "error_streak": 0}
        if state.get("counts", {}).get("turns", 0) >= self.steps.max_turns:
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
