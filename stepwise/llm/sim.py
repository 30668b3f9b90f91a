"""Simulated chat models for synthetic worlds, reached as ``sim:<name>``.

A simulation is labelled as one wherever its numbers appear; its answers follow the
world's known ground truth, never a language model. ``echo`` ships with the core for
plumbing checks; a world declares its model as an entry point of the ``stepwise.sim_models``
group (stepwise's own in pyproject.toml, a plug-in's in its own), loaded the first time
``sim:<name>`` is asked for, so that the backends import no world. ``register_sim`` adds
one in this process (a test's, say).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult

from stepwise.llm.base import ToolCallingMixin, tracing_params

SIM_MODELS: dict[str, Callable[..., BaseChatModel]] = {}
ENTRY_POINTS = "stepwise.sim_models"  # name -> "module:factory" of each installed world


def word_usage(messages: list[BaseMessage], words_out: int) -> UsageMetadata:
    """Usage for a model without a tokenizer (simulated, scripted): words stand in for tokens."""
    words_in = sum(len(m.text.split()) for m in messages)
    return UsageMetadata(input_tokens=words_in, output_tokens=words_out,
                         total_tokens=words_in + words_out)


def sim_model(name: str) -> Callable[..., BaseChatModel] | None:
    """The factory for ``sim:<name>``: registered in this process, else loaded from the
    installed world that declares it; None when no world does."""
    if name not in SIM_MODELS:
        for point in entry_points(group=ENTRY_POINTS, name=name):
            SIM_MODELS[name] = point.load()  # the world's module registers it as it loads
    return SIM_MODELS.get(name)


def sim_names() -> list[str]:
    """Every ``sim:`` name that can be asked for."""
    return sorted(set(SIM_MODELS) | {point.name for point in entry_points(group=ENTRY_POINTS)})


def register_sim(name: str) -> Callable[[Callable[..., BaseChatModel]], Callable[..., BaseChatModel]]:
    """Register a factory for ``sim:<name>``."""

    def decorate(factory: Callable[..., BaseChatModel]) -> Callable[..., BaseChatModel]:
        SIM_MODELS[name] = factory
        return factory

    return decorate


@register_sim("echo")
class EchoSimChatModel(ToolCallingMixin, BaseChatModel):
    """Simulation: answers with the last user message, prefixed ``echo:``; deterministic."""

    prefix: str = "echo: "

    @property
    def _llm_type(self) -> str:
        return "sim-echo"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params("stepwise-sim", kwargs.get("model", "sim:echo"))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        text = self.prefix + last
        message = AIMessage(content=text, usage_metadata=word_usage(messages, len(text.split())),
                            response_metadata={"model_name": "sim:echo", "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=message)])
