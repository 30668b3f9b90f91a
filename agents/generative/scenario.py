"""Generative agents as a scenario agent (``agent: generative``), for record and replay.

A scenario names a world (a WORLD.json relative to the scenario file, or a bundled town:
``party``, ``smallville``), how many steps to run, the mechanisms (``basic``, the default
of scenarios recorded before the paper's mechanisms, or ``paper``) and optionally a
``start`` for the world's clock (a few game hours late in a town's day, where its events
are). Every agent is interviewed with the scenario's question before the first step and
after the last; the result holds the
information diffusion of the answer (B's judge: every keyword in the answer) and the
network density of who mentions whom in memory, before and after, plus the step log,
the conversations, the reflections and their grounding in the stream. It all runs in a
temporary run directory; nothing is kept but the result. ``density`` counts who mentions
whom (what recorded scenarios assert); ``conversation_density`` counts who talked, as the
paper does; a world with events also gives their spread and the party's attendance
(``town_metrics.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Literal

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from stepwise.agents.generative import town_metrics
from stepwise.agents.generative.interview import interview
from stepwise.agents.generative.metrics import (
    conversation_edges,
    diffusion_report,
    grounding,
    network_density,
    relationship_edges,
)
from stepwise.agents.generative.simulation import Simulation
from stepwise.scenario.agents import register_agent

BUNDLED = ("party", "smallville")


class GenerativeScenarioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(ge=0)
    radius: float = Field(default=2.0, ge=0)
    max_turns: int = Field(default=6, ge=1)
    threshold: int = Field(default=150, ge=1)
    embeddings: str = Field(default="minilm", pattern="^(minilm|fake)$",
                            description="minilm: the bundled model; fake: hashed vectors "
                            "(tests of the plumbing only)")
    mechanisms: Literal["basic", "paper"] = Field(
        default="basic", description="basic: as scenarios were recorded before the paper's "
        "mechanisms; paper: with the area-tree walk, object states, summaries and re-planning")
    start: dt.datetime | None = Field(
        default=None, description="the clock's first step instead of the world's (e.g. "
        "late on the day of its party, so a short run reaches it)")


class GenerativeScenarioInputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    world: Path = Field(description="a WORLD.json relative to the scenario file, or a "
                        "bundled town: 'party', 'smallville'")
    question: str = Field(min_length=1, description="asked of every agent before and after")
    keywords: list[str] = Field(min_length=1, description="an answer is correct when it "
                                "contains all of them")

    @field_validator("world")
    @classmethod
    def _relative_to_scenario(cls, value: Path, info: ValidationInfo) -> Path:
        if str(value) in BUNDLED:
            return Path(str(resources.files("stepwise.sim.sandbox").joinpath(
                "data", f"{value}.json")))
        base = (info.context or {}).get("scenario_dir")
        return value if value.is_absolute() or base is None else Path(base) / value


def snapshot(run: Simulation, question: str, keywords: list[str]) -> dict:
    """Interview every agent; diffusion of the answers and who-mentions-whom density."""
    answers = {name: interview(mind, question, run.world.now)
               for name, mind in sorted(run.minds.items())}
    report = diffusion_report({n: a.answer for n, a in answers.items()}, keywords)
    edges = relationship_edges({name: [m.text for m in mind.stream.memories()]
                                for name, mind in sorted(run.minds.items())})
    return {"answers": {n: {"answer": a.answer, "cited": list(a.cited)}
                        for n, a in answers.items()},
            "diffusion": report.share, "knowers": list(report.knowers),
            "edges": [list(edge) for edge in edges],
            "density": network_density(sorted(run.minds), edges),
            "conversation_density": network_density(sorted(run.minds),
                                                    conversation_edges(run.conversations()))}


def started_at(world: Path, start: dt.datetime, folder: Path) -> Path:
    """A copy of ``world`` in ``folder`` whose clock starts at ``start``."""
    data = json.loads(world.read_text("utf-8"))
    data["clock"]["start"] = start.isoformat()
    copy = folder / world.name
    copy.write_text(json.dumps(data), "utf-8")
    return copy


def run_generative(model: BaseChatModel, config: GenerativeScenarioConfig,
                   inputs: GenerativeScenarioInputs) -> dict:
    embeddings = DeterministicFakeEmbedding(size=384) if config.embeddings == "fake" else None
    with tempfile.TemporaryDirectory() as folder, Simulation.create(
            inputs.world if config.start is None else started_at(inputs.world, config.start,
                                                                 Path(folder)),
            Path(folder) / "run", model, embeddings=embeddings,
            radius=config.radius, max_turns=config.max_turns,
            threshold=config.threshold, mechanisms=config.mechanisms) as run:
        before = snapshot(run, inputs.question, inputs.keywords)
        steps = run.run(config.steps)
        after = snapshot(run, inputs.question, inputs.keywords)
        reflections = [(m.text, m.evidence) for mind in run.minds.values()
                       for m in mind.stream.memories("reflection")]
        grounded = min((grounding([(m.text, m.evidence) for m in found],
                                  range(len(mind.stream))).share
                        for mind in run.minds.values()
                        if (found := mind.stream.memories("reflection"))), default=1.0)
        counters: dict[str, int] = {}
        for agent in run.agents.values():
            for key, value in agent["counters"].items():
                counters[key] = counters.get(key, 0) + value
        return {
            "before": before,
            "after": after,
            "steps": steps,
            "conversations": [c for step in steps for c in step["conversations"]],
            "reflections": [{"text": text, "evidence": list(evidence)}
                            for text, evidence in reflections],
            "reflection_grounding": grounded,
            "counters": counters,
            "time": run.world.spec.clock.stamp(run.world.now),
            "events": town_metrics.event_metrics(run) if run.world.spec.events else [],
            "costs": {k: v for k, v in run.cost_report().items() if k != "per_agent"},
        }


register_agent("generative", GenerativeScenarioConfig, GenerativeScenarioInputs)(run_generative)
