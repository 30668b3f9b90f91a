"""Think tools: thinking as a tool the model calls when it decides a step needs it.

``think`` writes a thought down (Anthropic's think tool); ``plan``, ``reflect`` and
``verify`` are prompt-defined: each runs an LLM call over its own prompt file. Every think
tool returns ``(text, artifact)``; the artifact (tool, request, thought, tokens, and the
thinking call's ``usage``) is what an agent keeps in its thought channel and counts against
its think budget.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from stepwise.errors import ConfigError
from stepwise.tools.think.prompted import PromptSpec, PromptThinkTool, render_transcript
from stepwise.tools.think.scratchpad import ThinkTool
from stepwise.tools.think.tokens import estimate_tokens

__all__ = [
    "PromptSpec",
    "PromptThinkTool",
    "ThinkTool",
    "builtin_think_tools",
    "estimate_tokens",
    "load_think_tools",
    "render_transcript",
]


def builtin_prompts() -> dict[str, Path]:
    """The prompt files that ship with stepwise, by tool name."""
    folder = resources.files("stepwise.tools.think") / "prompts"
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".md")}


def builtin_think_tools() -> list[str]:
    return ["think", *sorted(builtin_prompts())]


def load_think_tools(names: list[str], llm: BaseChatModel | None = None,
                     prompts_dir: str | Path | None = None) -> list[BaseTool]:
    """Think tools by name (``think``, ``plan``, ...) or by prompt-file path.

    A ``NAME.md`` in ``prompts_dir`` overrides the shipped prompt of that name. ``llm`` is
    the model prompt-defined tools think with (``None``: the acting agent's model).
    """
    prompts = builtin_prompts()
    if prompts_dir is not None:
        folder = Path(prompts_dir)
        if not folder.is_dir():
            raise ConfigError(f"think prompts folder {folder} does not exist")
        prompts.update({f.stem: f for f in sorted(folder.glob("*.md"))})
    tools: list[BaseTool] = []
    for name in names:
        if name == "think":
            tools.append(ThinkTool())
        elif name in prompts:
            tools.append(PromptThinkTool.from_file(prompts[name], llm))
        elif name.endswith(".md") or "/" in name:
            tools.append(PromptThinkTool.from_file(name, llm))
        else:
            known = ", ".join(["think", *sorted(prompts)])
            raise ConfigError(f"unknown think tool {name!r} (known: {known}; "
                              "or give the path of a prompt file)")
    seen = [tool.name for tool in tools]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"think tools named twice: {', '.join(seen)}")
    return tools
