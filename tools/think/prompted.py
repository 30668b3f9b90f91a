"""Prompt-defined think tools: a prompt template plus an LLM call, returned as the tool result.

Different prompts make different think tools (``plan``, ``reflect``, ``verify`` ship as
files in ``prompts/``; a user's own file overrides or adds one). A prompt file is
markdown with a YAML header giving the description the acting model reads::

    ---
    description: Check a candidate action before committing to it.
    ---
    ... {request} ... {context} ... optional {goal} and {policy} ...

``{request}`` (what the model asked to think about) and ``{context}`` (the conversation
so far, recent turns or all of it) are required; ``{goal}`` is the user's first message
and ``{policy}`` the agent's system prompt. Only these four names are replaced, so other
braces in a prompt (JSON examples) need no escaping.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolArg
from pydantic import BaseModel, ConfigDict, Field

from stepwise.errors import ConfigError
from stepwise.tools.think.tokens import output_tokens

REQUIRED = ("request", "context")
OPTIONAL = ("goal", "policy")
PLACEHOLDER = re.compile(r"\{(request|context|goal|policy)\}")
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)
RECENT_MESSAGES = 8


class ThinkRequest(BaseModel):
    """What the acting model sends; the transcript and policy are filled in by the agent."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: str = Field(description="What to think about, in a sentence or two.")
    context: Literal["recent", "all"] = Field(
        default="recent",
        description="How much of the conversation to think over: the recent turns or all of it.")
    transcript: Annotated[list[Any], InjectedToolArg] = Field(default_factory=list)
    policy: Annotated[str, InjectedToolArg] = ""


class PromptSpec(BaseModel):
    """A think tool as written in a prompt file."""

    name: str
    description: str
    template: str

    @classmethod
    def from_file(cls, path: str | Path) -> PromptSpec:
        """Read and check a prompt file; a bad one raises ``ConfigError`` naming the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"think prompt {path}: cannot read it ({exc.strerror})") from None
        match = FRONT_MATTER.match(text)
        if not match:
            raise ConfigError(f"think prompt {path}: it must start with a '---' header "
                              "holding a description")
        try:
            header = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"think prompt {path}: its header is not YAML ({exc})") from None
        description = header.get("description") if isinstance(header, dict) else None
        if not isinstance(description, str) or not description.strip():
            raise ConfigError(f"think prompt {path}: its header needs a description")
        template = match.group(2).strip()
        missing = [f"{{{name}}}" for name in REQUIRED if f"{{{name}}}" not in template]
        if missing:
            raise ConfigError(f"think prompt {path}: the template is missing "
                              f"{' and '.join(missing)}")
        name = header.get("name") or path.stem
        return cls(name=str(name), description=" ".join(description.split()), template=template)

    def fill(self, **values: str) -> str:
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), self.template)


def render_transcript(messages: list[BaseMessage], last: int | None = None) -> str:
    """The conversation as plain lines: who said what, which tools ran and what they gave."""
    lines = []
    for message in messages[-last:] if last else messages:
        if isinstance(message, HumanMessage):
            lines.append(f"user: {message.text}")
        elif isinstance(message, AIMessage):
            if message.text:
                lines.append(f"assistant: {message.text}")
            for call in message.tool_calls:
                args = ", ".join(f"{k}={v!r}" for k, v in call["args"].items())
                lines.append(f"assistant called {call['name']}({args})")
        elif isinstance(message, ToolMessage):
            status = " (error)" if message.status == "error" else ""
            lines.append(f"{message.name or 'tool'}{status} returned: {message.text}")
    return "\n".join(lines) or "(nothing yet)"


class PromptThinkTool(BaseTool):
    """A think tool that runs ``llm`` over its filled-in prompt and returns the answer.

    ``llm=None`` means the acting agent's own model; the agent binds it (``with_llm``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: PromptSpec
    llm: BaseChatModel | None = None
    args_schema: type[BaseModel] = ThinkRequest
    response_format: str = "content_and_artifact"
    name: str = ""
    description: str = ""

    def __init__(self, spec: PromptSpec, llm: BaseChatModel | None = None, **kwargs: Any):
        super().__init__(spec=spec, llm=llm, name=spec.name, description=spec.description,
                         **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, llm: BaseChatModel | None = None) -> PromptThinkTool:
        return cls(PromptSpec.from_file(path), llm)

    def with_llm(self, llm: BaseChatModel) -> PromptThinkTool:
        """This tool thinking with ``llm``, unless it already has its own model."""
        return self if self.llm is not None else PromptThinkTool(self.spec, llm)

    def prompt(self, request: str, context: str, transcript: list[BaseMessage],
               policy: str = "") -> str:
        goal = next((m.text for m in transcript if isinstance(m, HumanMessage)), "")
        shown = render_transcript(transcript, None if context == "all" else RECENT_MESSAGES)
        return self.spec.fill(request=request, context=shown, goal=goal or "(none given)",
                              policy=policy or "(none given)")

    def _run(self, request: str, context: str = "recent", transcript: list | None = None,
             policy: str = "", **_: Any) -> tuple[str, dict]:
        if self.llm is None:
            raise ConfigError(f"think tool {self.name!r} has no model; bind one with with_llm()")
        answer = self.llm.invoke([HumanMessage(self.prompt(request, context, transcript or [],
                                                           policy))])
        assert isinstance(answer, AIMessage)
        text = answer.text.strip() or "(the thinking came back empty)"
        artifact = {"tool": self.name, "request": request, "thought": text,
                    "tokens": output_tokens(answer), "usage": dict(answer.usage_metadata or {})}
        return text, artifact
