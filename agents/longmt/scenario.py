"""The LongMT agent as a scenario agent (``agent: longmt``), for record and replay.

A scenario names a document (a path relative to the scenario file), the languages and
the policy; the result holds the translation, the step trace, the memory at the end
and, with a reference, the scores, for expectations to look into.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from stepwise.agents.longmt.agent import LongMTAgent
from stepwise.agents.longmt.evaluate import DocOutcome, document_scores
from stepwise.documents.pages import read_lines
from stepwise.scenario.agents import register_agent


class LongMTScenarioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    src: str
    tgt: str
    policy: str = "auto"
    page_sentences: int | None = Field(default=10, ge=1)
    max_chars: int | None = Field(default=None, ge=1)
    view_k: int = Field(default=5, ge=1)


class LongMTScenarioInputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: Path = Field(description="the source text, relative to the scenario file")
    reference: Path | None = None

    @field_validator("document", "reference")
    @classmethod
    def _relative_to_scenario(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("scenario_dir")
        if value is None or value.is_absolute() or base is None:
            return value
        return Path(base) / value


@register_agent("longmt", LongMTScenarioConfig, LongMTScenarioInputs)
def run_longmt(model: BaseChatModel, config: LongMTScenarioConfig,
               inputs: LongMTScenarioInputs) -> dict:
    agent = LongMTAgent(model, policy=config.policy, page_sentences=config.page_sentences,
                        max_chars=config.max_chars, view_k=config.view_k)
    result = agent.translate(read_lines(inputs.document), src=config.src, tgt=config.tgt,
                             doc_id=inputs.document.stem)
    ref = read_lines(inputs.reference) if inputs.reference else None
    outcome = DocOutcome(result.doc_id, config.tgt, result.lines, result.totals(), ref)
    return {
        "lines": result.lines,
        "pages": len(result.steps),
        "steps": [{**step, "modules_called": [m["tool"] for m in step["modules"]]}
                  for step in result.steps],
        "memory": result.memory.to_dict(),
        "totals": result.totals(),
        "scores": document_scores(outcome),
    }
