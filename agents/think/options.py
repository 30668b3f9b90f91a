"""The think agent's settings as one validated object, shared by Python, CLI and scenarios."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel, ConfigDict, Field

from stepwise.agents.think.agent import ThinkAgent
from stepwise.agents.think.budget import NativeThinking, ThinkBudget


class ThinkOptions(BaseModel):
    """How a think agent is set up; everything but the model, tools and policy."""

    model_config = ConfigDict(extra="forbid")

    think_tools: list[str] = Field(default_factory=lambda: ["think"],
                                   description="think tools by name or prompt-file path")
    think_prompts: str | None = Field(default=None,
                                      description="a folder of prompt files overriding ours")
    think_budget: int | None = Field(default=None, ge=0, description="most think calls per run")
    think_tokens: int | None = Field(default=None, ge=0, description="most think tokens per run")
    enable_thinking: bool | None = Field(default=None, description="the backend's own thinking")
    thinking_token_budget: int | None = Field(default=None, gt=0)
    ask_human: bool = False
    max_turns: int = Field(default=20, ge=1)
    max_error_streak: int = Field(default=3, ge=1)
    tools: list[str] | None = Field(default=None, description="only these of the world's tools")

    def build(self, model: BaseChatModel, tools: Sequence[BaseTool], system_prompt: str = "",
              *, think_model: BaseChatModel | None = None,
              checkpointer: BaseCheckpointSaver | None = None) -> ThinkAgent:
        return ThinkAgent(
            model, tools, think_tools=self.think_tools, think_model=think_model,
            prompts_dir=self.think_prompts,
            budget=ThinkBudget(max_calls=self.think_budget, max_tokens=self.think_tokens),
            native=NativeThinking(enabled=self.enable_thinking,
                                  token_budget=self.thinking_token_budget),
            system_prompt=system_prompt, ask_human=self.ask_human, max_turns=self.max_turns,
            max_error_streak=self.max_error_streak, checkpointer=checkpointer)
