"""LongMT as a LangGraph state machine: per page, query -> translate -> update, then the next."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from stepwise.agents.longmt.page_steps import PageSteps
from stepwise.agents.longmt.state import LongMTState


def build_graph(steps: PageSteps) -> CompiledStateGraph:
    graph = StateGraph(LongMTState)
    graph.add_node("query", lambda state: steps.query(state))
    graph.add_node("translate", steps.translate)
    graph.add_node("update", steps.update)
    graph.add_conditional_edges(START, lambda s: END if steps.finished(s) else "query")
    graph.add_edge("query", "translate")
    graph.add_edge("translate", "update")
    graph.add_conditional_edges("update", lambda s: END if steps.finished(s) else "query")
    return graph.compile()
