"""``think``: Anthropic's think tool. The model writes a thought down; nothing else happens.

It fetches nothing and changes nothing. Its value is the pause: the thought lands in the
transcript (and in the agent's thought channel), where the next turn can use it.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from stepwise.tools.think.tokens import estimate_tokens

THINK_DESCRIPTION = (
    "Think something through before acting. This tool looks nothing up and changes "
    "nothing; it only writes your thought down. Use it to check the rules that apply, to "
    "sort out what you know, or to decide between options when a step is not obvious."
)


class ThinkArgs(BaseModel):
    thought: str = Field(description="Your thought, in full.")


class ThinkTool(BaseTool):
    """The plain think tool; its artifact carries the thought for the thought channel."""

    name: str = "think"
    description: str = THINK_DESCRIPTION
    args_schema: type[BaseModel] = ThinkArgs
    response_format: str = "content_and_artifact"

    def _run(self, thought: str, **_: object) -> tuple[str, dict]:
        artifact = {"tool": self.name, "request": "", "thought": thought,
                    "tokens": estimate_tokens(thought)}
        return "Thought noted.", artifact
