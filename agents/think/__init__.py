"""The think-as-tool agent: a ReAct loop whose thinking is a set of tools.

Thinking and acting are both tools; the model decides which one a step needs. Think
tools come from ``stepwise.tools.think``; budgets bound them; every run reports its think
rate, calls, tokens and tool errors.
"""

from stepwise.agents.think.agent import ThinkAgent, ThinkRun
from stepwise.agents.think.budget import NativeThinking, ThinkBudget
from stepwise.agents.think.metrics import RunMetrics

__all__ = ["NativeThinking", "RunMetrics", "ThinkAgent", "ThinkBudget", "ThinkRun"]
