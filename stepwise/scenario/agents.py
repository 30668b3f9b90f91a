"""Agents a scenario can name. Each agent issue registers its own runner here.

A runner takes a chat model and the scenario's validated config and inputs and returns
its result as plain data, which the scenario's expectations look into.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages
from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class ScenarioAgent:
    config: type[BaseModel]
    inputs: type[BaseModel]
    run: Callable[[BaseChatModel, Any, Any], dict]


SCENARIO_AGENTS: dict[str, ScenarioAgent] = {}

# Agents that ship with stepwise register when first named, so that replaying a chat
# scenario never imports LangGraph agents it does not use.
BUILTIN_AGENT_MODULES = {"think": "stepwise.agents.think.scenario",
                         "longmt": "stepwise.agents.longmt.scenario",
                         "generative": "stepwise.agents.generative.scenario"}


def scenario_agent(name: str) -> ScenarioAgent | None:
    """The registered agent called ``name``, importing a built-in one on first use."""
    if name not in SCENARIO_AGENTS and name in BUILTIN_AGENT_MODULES:
        importlib.import_module(BUILTIN_AGENT_MODULES[name])
    return SCENARIO_AGENTS.get(name)


def known_agents() -> list[str]:
    return sorted(set(SCENARIO_AGENTS) | set(BUILTIN_AGENT_MODULES))


def register_agent(name: str, config: type[BaseModel], inputs: type[BaseModel]):
    """Make ``run(model, config, inputs) -> dict`` available to scenarios as ``agent: name``."""

    def decorate(run: Callable[[BaseChatModel, Any, Any], dict]):
        SCENARIO_AGENTS[name] = ScenarioAgent(config, inputs, run)
        return run

    return decorate


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatConfig(BaseModel):
    """Sampling parameters and tools for a single model call."""

    model_config = ConfigDict(extra="forbid")
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    n: int | None = Field(default=None, gt=0)
    seed: int | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)


class ChatInputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=1)


def message_result(message: AIMessage) -> dict:
    return {
        "content": message.text,
        "tool_calls": [{"name": c["name"], "args": c["args"]} for c in message.tool_calls],
        "invalid_tool_calls": [{"name": c.get("name"), "error": c.get("error")}
                               for c in message.invalid_tool_calls],
    }


@register_agent("chat", ChatConfig, ChatInputs)
def run_chat(model: BaseChatModel, config: ChatConfig, inputs: ChatInputs) -> dict:
    """One model call: the smallest scenario, proving record and replay end to end."""
    params = config.model_dump(exclude={"tools"}, exclude_none=True)
    runnable = model.bind_tools(config.tools) if config.tools else model
    bound = getattr(runnable, "kwargs", {})
    messages = convert_to_messages([m.model_dump() for m in inputs.messages])
    result = model.generate([messages], **{**bound, **params})
    outputs = [message_result(g.message) for g in result.generations[0]]  # type: ignore[arg-type]
    usage = result.generations[0][0].message.usage_metadata or {}  # type: ignore[attr-defined]
    return {"output": outputs[0], "outputs": outputs, "usage": dict(usage)}
