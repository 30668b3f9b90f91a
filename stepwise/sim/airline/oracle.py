"""``sim:airline-oracle``: a SIMULATED chat model that plays each airline task's gold script.

It is no language model: it recognises the task by the user's request and replays the known
right behaviour (one read for context, a ``think`` before a refusal when that tool is bound,
then the gold actions one per turn, then a final answer). It shows what a perfect agent's
trace looks like and exercises the agent loop without a model server.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import register_sim, word_usage
from stepwise.sim.airline.tasks import AirlineTask, load_tasks

MODEL_NAME = "sim:airline-oracle"
NO_SCRIPT = "(simulated oracle) I have no script for this request."


def script(task: AirlineTask, bound: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the oracle makes for ``task``, given the bound tool names."""
    steps: list[tuple[str, dict[str, Any]]] = [("get_user", {"user_id": task.user_id})]
    if task.policy_refusal:
        steps.append(("think", {"thought": f"Policy check before answering. {task.note}"}))
    steps += [(action.name, dict(action.args)) for action in task.actions]
    return [(name, args) for name, args in steps if name in bound]


def final_answer(task: AirlineTask, bound: set[str]) -> str:
    if task.policy_refusal:
        return f"(simulated oracle) I'm sorry, I can't do that. {task.note}"
    if any(action.name not in bound for action in task.actions):
        return "(simulated oracle) I cannot do this without the airline tools."
    return f"(simulated oracle) Done. {task.note}"


def next_step(steps: list[tuple[str, dict[str, Any]]], messages: list[BaseMessage]) -> int:
    """How far into the script the conversation is: made calls matched in order (any
    ``think`` call stands for the script's think), so the oracle stays on script when only
    some tools are bound at a turn."""
    done = 0
    for message in messages:
        if not isinstance(message, AIMessage):
            continue
        for call in message.tool_calls:
            if done < len(steps) and call["name"] == steps[done][0] and (
                    call["name"] == "think" or call["args"] == steps[done][1]):
                done += 1
    return done


@register_sim("airline-oracle")
class AirlineOracleChatModel(ToolCallingMixin, BaseChatModel):
    """Simulation: replays the gold script of the airline task whose request it is given."""

    @property
    def _llm_type(self) -> str:
        return "sim-airline-oracle"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params("stepwise-sim", kwargs.get("model", MODEL_NAME))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = next((m.text for m in messages if isinstance(m, HumanMessage)), "")
        task = next((t for t in load_tasks() if t.request == request.strip()), None)
        bound = {tool.get("function", {}).get("name") for tool in kwargs.get("tools") or []}
        steps = script(task, bound) if task else []
        turn = next_step(steps, messages)
        if turn < len(steps):
            name, args = steps[turn]
            text = ""
            calls = [{"name": name, "args": args, "id": f"call_{turn}", "type": "tool_call"}]
            spoken = json.dumps(args)
        else:
            text = final_answer(task, bound) if task else NO_SCRIPT
            calls = []
            spoken = text
        usage = word_usage(messages, len(spoken.split()))
        message = AIMessage(content=text, tool_calls=calls, usage_metadata=usage,
                            response_metadata={"model_name": MODEL_NAME, "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=message)])
