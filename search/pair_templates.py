"""Preference rows as a model's chat template renders them, and what can go wrong there.

A pair is only a training signal if chosen and rejected become different tokens. A plain
ChatML template (SmolLM2's) renders a turn that only calls tools as an empty assistant
turn, so two steps that differ in their tool calls become the same string and DPO learns
nothing from them, however different the message dicts are. So every row is rewritten
with ``stepwise.llm.tool_prompt.messages_for_template`` before it is rendered (the rewrite
the HF backend prompts with): schemas into the system prompt, calls as ``<tool_call>``
text. The prompt is rewritten with the tools and each step without them: the rewrite is
per message, apart from the system prompt, which is in the prompt, so prompt and
prompt + step agree on their common part.

Rows are then tokenised and cut the way TRL's ``DPOTrainer`` cuts them (the completion
starts where prompt and prompt + step diverge, ``trl.data_utils.common_prefix_length``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stepwise.llm.tool_prompt import encode_chat, messages_for_template

PREFIX_REASON = "prompt tokens are not a prefix of prompt + step under the chat template"
SAME_TOKENS_REASON = "chosen and rejected render to the same tokens under the chat template"
RENDER_REASON = "the chat template cannot render the row"


def tools_list(tools: Any) -> list[dict] | None:
    """A row's ``tools`` (a JSON string or a list) as a list, None when there are none."""
    if isinstance(tools, str):
        tools = json.loads(tools) if tools.strip() else None
    return list(tools) if tools else None


def template_row(row: Mapping[str, Any], tokenizer: Any) -> dict:
    """The row with prompt, chosen and rejected rewritten so the template shows every tool
    schema and call; ``tools`` is left out when the schemas moved into the prompt."""
    prompt, tools = messages_for_template(row["prompt"], tools_list(row.get("tools")),
                                          tokenizer)
    out = {**row, "prompt": prompt}
    for side in ("chosen", "rejected"):
        if side in row:
            out[side], _ = messages_for_template(row[side], None, tokenizer)
    if tools is None:
        out.pop("tools", None)
    return out


def rendered_ids(row: Mapping[str, Any], tokenizer: Any, *, rewrite: bool = True,
                 ) -> dict[str, list[int]]:
    """``prompt``, ``chosen`` and ``rejected`` token ids as the trainer cuts them, plus the
    ``prompt_alone`` ids (the prompt with the generation prompt) the cut started from."""
    from trl.data_utils import common_prefix_length

    if rewrite:
        row = template_row(row, tokenizer)
    tools = tools_list(row.get("tools"))
    alone = encode_chat(tokenizer, row["prompt"], tools, generation_prompt=True)
    whole = {side: encode_chat(tokenizer, [*row["prompt"], *row[side]], tools)
             for side in ("chosen", "rejected")}
    cut = min(common_prefix_length(alone, ids) for ids in whole.values())
    return {"prompt_alone": alone, "prompt": alone[:cut],
            **{side: ids[cut:] for side, ids in whole.items()},
            **{f"{side}_whole": ids for side, ids in whole.items()}}


def template_problem(row: Mapping[str, Any], tokenizer: Any, *, rewrite: bool = True,
                     ) -> str | None:
    """Why the trainer would get no clean signal from a (well-formed) row, or None.

    - the template refuses to render it;
    - the prompt's tokens (with the generation prompt) are not a strict prefix of prompt +
      chosen and of prompt + rejected: the trainer would cut the completion where they
      diverge and train on a context the model never sees (or on nothing);
    - chosen and rejected are the same tokens: the DPO loss has no gradient.
    """
    try:
        ids = rendered_ids(row, tokenizer, rewrite=rewrite)
    except Exception:  # noqa: BLE001 - a template that raises on a row cannot train on it
        return RENDER_REASON
    alone = ids["prompt_alone"]
    for side in ("chosen", "rejected"):
        whole = ids[f"{side}_whole"]
        if len(whole) <= len(alone) or whole[:len(alone)] != alone:
            return PREFIX_REASON
    if ids["chosen"] == ids["rejected"]:
        return SAME_TOKENS_REASON
    return None
