"""The hand-written answers behind the LongMT scenario's cassette (it is scripted).

No model wrote the cassette. A scripted model answers the agent's real prompts: it
translates each source sentence with its share of the WMT24++ reference line, decides the
memory modules by a rule (look up the names it knows; once, a page number out of range,
then the corrected call), summarises a page by its first translated sentence, and lists
the entities it knows. Recording goes through the real agent and recorder, so the
requests in the cassette are exactly what the agent sends. Re-record after changing the
agent's prompts or tools with

    python scenarios/longmt/scripts.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from stepwise.agents.longmt.prompts import (
    ENTITIES_HEAD,
    NO_MODULES_REPLY,
    QUERY_HEAD,
    SUMMARY_HEAD,
    TRANSLATE_HEAD,
    blocks,
)
from stepwise.documents import read_lines, split_sentences
from stepwise.scenario.runner import record_file
from stepwise.testing.responding import RespondingChatModel
from stepwise.testing.scripted import ai

HERE = Path(__file__).resolve().parent
SOURCE = "scripted: rule-based answers in scenarios/longmt/scripts.py"
NAMES = {"Thassalin": "萨萨林", "Tenuk": "特努克", "Kayel": "卡耶尔", "Nyssi": "尼西",
         "Thraki": "斯拉克人"}


def sentence_references(src: list[str], ref: list[str]) -> dict[str, str]:
    """Each English sentence -> its share of the Chinese line (sentences dealt out in order)."""
    shares: dict[str, str] = {}
    for en_line, zh_line in zip(src, ref, strict=True):
        en = [s.strip() for s in split_sentences(en_line, "en") if s.strip()]
        zh = [s.strip() for s in split_sentences(zh_line, "zh") if s.strip()]
        for i, sentence in enumerate(en):
            part = zh[i * len(zh) // len(en):(i + 1) * len(zh) // len(en)]
            shares[" ".join(sentence.split())] = "".join(part) or "……"
    return shares


def scripted_translator() -> RespondingChatModel:
    shares = sentence_references(read_lines(HERE / "data/doc0.en"),
                                 read_lines(HERE / "data/doc0.zh"))

    def respond(messages, tools):
        prompt = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
        if prompt.startswith(QUERY_HEAD):
            return decide(prompt, messages)
        if prompt.startswith(TRANSLATE_HEAD):
            return "\n".join(f"{i}. {shares[line]}"
                             for i, line in enumerate(blocks(prompt)["page"], 1))
        if prompt.startswith(SUMMARY_HEAD):
            return blocks(prompt)["translation"][0][:40]
        if prompt.startswith(ENTITIES_HEAD):
            source = " ".join(blocks(prompt)["source"])
            return json.dumps([{"name": en, "translation": zh, "type": "character",
                                "description": "a character of the story"}
                               for en, zh in NAMES.items() if en in source], ensure_ascii=False)
        return "I only answer this document's prompts."

    return RespondingChatModel(respond=respond)


def decide(prompt: str, messages: list) -> AIMessage:
    page = int(prompt.split()[3])
    replies = [m for m in messages if isinstance(m, ToolMessage)]
    if replies:  # second round: correct a failed call once, else translate
        first_round = sum(isinstance(m, AIMessage) for m in messages) == 1
        if first_round and any(m.status == "error" for m in replies):
            return ai("", ("view_pages", {"query": "Thraki dragon", "pages": [page - 1]}))
        return ai("Ready to translate.")
    names = [en for en in NAMES if en in prompt]
    calls = [("lookup_entities", {"names": names})] if names else []
    if page == 3:
        calls.append(("view_pages", {"query": "Thraki dragon", "pages": [page + 5]}))
    return ai("", *calls) if calls else ai(NO_MODULES_REPLY)


if __name__ == "__main__":
    outcome = record_file(str(HERE / "longmt-real-document.yaml"), scripted_translator(),
                          source=SOURCE)
    print(outcome.name, "passed" if outcome.passed else f"FAILED {outcome.error or ''}")
    for check in outcome.checks:
        print(" ", "ok " if check.passed else "BAD", check.expectation.describe(), check.found)
    sys.exit(0 if outcome.passed else 1)
