"""Interviewing an agent: answer a question in its voice from the memories retrieved for it.

The answer cites the ids of the memories it rests on; cited ids that were not among the
retrieved memories are dropped (the answer may only rest on what it was shown). An
answer that is not a JSON object is kept as the answer text, with no citations. An
interview reads memory but writes none (retrieval still marks what it used as accessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stepwise.agents.generative.answers import json_object
from stepwise.agents.generative.mind import Mind
from stepwise.agents.generative.prompts import interview_prompt

RETRIEVE = 10


@dataclass(frozen=True)
class InterviewAnswer:
    answer: str
    cited: tuple[int, ...]
    retrieved: tuple[int, ...]
    parsed: bool  # False when the model's answer was not the JSON asked for


def interview(mind: Mind, question: str, now: datetime, k: int = RETRIEVE) -> InterviewAnswer:
    memories = mind.stream.retrieve(question, k=k, now=now)
    shown = tuple(sorted(m.id for m in memories))
    text = mind.ask(interview_prompt(mind.header(now), mind.name, question,
                                     mind.memory_pairs(memories)))
    data = json_object(text)
    if data is None or not isinstance(data.get("answer"), str):
        return InterviewAnswer(text.strip(), (), shown, False)
    raw = data.get("cited") if isinstance(data.get("cited"), list) else []
    cited = tuple(dict.fromkeys(i for i in raw if isinstance(i, int) and i in shown))
    return InterviewAnswer(data["answer"].strip(), cited, shown, True)
