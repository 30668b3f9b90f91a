"""``sim:translator``: a SIMULATED chat model that answers the LongMT agent's prompts.

It is no language model. It reads the agent's real prompts (``stepwise.agents.longmt.
prompts``) and the tool results quoted in them (``stepwise.tools.longmt.formats``), and
translates ``qsy`` by the fixed letter permutation, so every score it earns is a score of
a simulation. What makes it a test bed for memory policies:

- a marked form (``~Xyz``, ``^cod``, ``*word``) comes out right only when the prompt holds
  the context that explains it (entity records, a summary, an earlier sentence); without
  it the model makes a fixed wrong guess;
- context that explains nothing on a page interferes: with probability ``interference``
  per line and irrelevant block, one output word is replaced by a word of that block;
- on the decision turn (``auto`` policy) it is an eager, imperfect chooser: it looks up
  every name, and now and then calls a module the page does not need.

All randomness is seeded from SHA-256 of the text at hand, so answers are the same in
every process. It does no I/O.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from stepwise.agents.longmt.prompts import (
    ENTITIES_HEAD,
    NO_MODULES_REPLY,
    QUERY_HEAD,
    SUMMARY_HEAD,
    TRANSLATE_HEAD,
    blocks,
)
from stepwise.errors import StepwiseError
from stepwise.llm.base import ToolCallingMixin, tracing_params
from stepwise.llm.sim import register_sim, word_usage
from stepwise.sim.translation.language import (
    ALIAS,
    GLOSS,
    LANGUAGE,
    MARKED,
    PHRASE,
    REFERENCE,
    WORD,
    decode,
)
from stepwise.tools.longmt.formats import (
    ENTITY_LINE,
    LOOKUP_ENTITIES,
    NOTHING_FOUND,
    SENTENCE_LINE,
    SUMMARY_LINE,
    VIEW_PAGES,
    VIEW_SUMMARIES,
    context_blocks,
)

MODEL_NAME = "sim:translator"
READY = "Ready to translate."
NOT_MINE = "(simulated translator) I only answer LongMT prompts."
SUMMARY_WORDS = 12
PAGE_OF = re.compile(r"page (\d+)")
KNOWN = re.compile(r"Already recorded: (?P<known>.*?)\. Answer with the JSON array only\.")
TOKEN = re.compile(r"[~^*]?[A-Za-z]+(?:\^[a-z]{3})?")
NAME = re.compile(r"[A-Z][a-z]+")
POSSESSIVE = re.compile(r"['’]s$")


def check_translatable(model: str, documents: Iterable[Any]) -> None:
    """Refuse documents in a real language for ``sim:translator``, before any page: it only
    undoes qsy's letter permutation, so real text would come out scrambled and be scored as
    if it were a translation. ``documents`` have ``src_lang`` and ``tgt_lang``."""
    if model != MODEL_NAME:
        return
    for doc in documents:
        if doc.src_lang != LANGUAGE:
            raise StepwiseError(f"{MODEL_NAME} translates only the simulated language "
                                f"{LANGUAGE} (stepwise sim make); for {doc.src_lang} -> "
                                f"{doc.tgt_lang} use a real model: hf:smollm2, hf:PATH or "
                                "openai:URL")


def seeded(*parts: str) -> random.Random:
    """A generator seeded by SHA-256 of ``parts``: the same in every process."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def names_in(lines: Sequence[str]) -> list[str]:
    """Capitalised words of the source that do not start their sentence (markers excluded)."""
    found: list[str] = []
    for line in lines:
        for i, token in enumerate(TOKEN.findall(line)):
            if i and NAME.fullmatch(token) and token not in found:
                found.append(token)
    return found


# -- translating a page -----------------------------------------------------------------


def _lines(body: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [m for line in body.splitlines() if (m := pattern.match(line.strip()))]


class _Context:
    """The context blocks of a translation prompt, and which of them resolved something."""

    def __init__(self, found: dict[str, str]) -> None:
        self.blocks = {name: body for name, body in found.items()
                       if body.strip() and body.strip() != NOTHING_FOUND}
        self.used: set[str] = set()

    def _credit(self, name: str, value: str | None) -> str | None:
        if value is not None:
            self.used.add(name)
        return value

    def entity(self, stem: str) -> str | None:
        for match in _lines(self.blocks.get(LOOKUP_ENTITIES, ""), ENTITY_LINE):
            if match["name"].strip().startswith(stem):
                return self._credit(LOOKUP_ENTITIES, POSSESSIVE.sub("", match["translation"]))
        pattern = re.compile(rf"(?<![~^*A-Za-z]){re.escape(stem)}[a-z]*")
        for match in _lines(self.blocks.get(VIEW_PAGES, ""), SENTENCE_LINE):
            if word := pattern.search(match["source"]):
                return self._credit(VIEW_PAGES, decode(word.group()))
        return None

    def reference(self, code: str) -> str | None:
        pattern = re.compile(rf"\^{code} = (?P<word>[^.\n]+)\.")
        for match in _lines(self.blocks.get(VIEW_SUMMARIES, ""), SUMMARY_LINE):
            if found := pattern.search(match["text"]):
                return self._credit(VIEW_SUMMARIES, found["word"].strip())
        return None

    def phrase(self, word: str) -> str | None:
        pattern = re.compile(rf"(?<![~^*A-Za-z]){re.escape(word)} (?P<next>[A-Za-z]+)")
        for match in _lines(self.blocks.get(VIEW_PAGES, ""), SENTENCE_LINE):
            if found := pattern.search(match["source"]):
                return self._credit(VIEW_PAGES, decode(f"{word} {found['next']}"))
        return None

    def words(self, name: str) -> list[str]:
        """The target-language words of a block: what leaks into a translation."""
        body = self.blocks[name]
        if name == VIEW_PAGES:
            body = " ".join(m["translation"] for m in _lines(body, SENTENCE_LINE))
        elif name == LOOKUP_ENTITIES:
            body = " ".join(m["translation"] for m in _lines(body, ENTITY_LINE))
        else:
            body = re.sub(r"\(simulated summary\)|\^[a-z]{3} = ", " ", body)
            body = " ".join(m["text"] for m in _lines(body, SUMMARY_LINE))
        return [w for w in WORD.findall(body) if len(w) >= 3] or WORD.findall(body)


def _resolve(match: re.Match[str], context: _Context) -> str:
    """A marked form in English, from the context, or the model's fixed wrong guess."""
    if match["alias"]:
        return context.entity(match["alias"]) or decode(match["alias"])
    if match["word"]:
        return decode(match["word"])
    if match["ref"]:
        return context.reference(match["ref"]) or "it"
    return context.phrase(match["phrase"]) or decode(match["phrase"])


def translate_line(line: str, context: _Context) -> str:
    out, last = [], 0
    for match in MARKED.finditer(line):
        out += [decode(line[last:match.start()]), _resolve(match, context)]
        last = match.end()
    return "".join([*out, decode(line[last:])])


def _interfere(line: str, output: str, name: str, words: list[str], rate: float) -> str:
    """With probability ``rate``, one word of ``output`` becomes a word of block ``name``."""
    rng = seeded(name, line)
    if not words or rng.random() >= rate:
        return output
    tokens = output.split(" ")
    spots = [i for i, token in enumerate(tokens) if WORD.search(token)]
    if not spots:
        return output
    spot, word = rng.choice(spots), rng.choice(words)
    if tokens[spot][:1].isupper():
        word = word[:1].upper() + word[1:]
    tokens[spot] = WORD.sub(word, tokens[spot], count=1)
    return " ".join(tokens)


def translate_page(prompt: str, interference: float) -> list[str]:
    """The translation of a translate prompt's page, line by line."""
    lines = blocks(prompt).get("page", [])
    context = _Context(context_blocks(prompt))
    outputs = [translate_line(line, context) for line in lines]
    for name in [name for name in context.blocks if name not in context.used]:
        words = context.words(name)  # a block that resolved nothing on the page
        outputs = [_interfere(line, out, name, words, interference)
                   for line, out in zip(lines, outputs, strict=True)]
    return outputs


# -- the other prompts ------------------------------------------------------------------


def summary(prompt: str) -> str:
    found = blocks(prompt)
    words = " ".join(found.get("translation", [])).split()[:SUMMARY_WORDS]
    text = "(simulated summary) " + " ".join(words)
    for line in found.get("source", []):
        for gloss in GLOSS.finditer(line):
            text += f" ^{gloss['code']} = {decode(gloss['word'])}."
    return text


def entities(prompt: str) -> str:
    found = blocks(prompt)
    page = int(m[1]) if (m := PAGE_OF.search(prompt)) else 0
    known = KNOWN.search(prompt)
    recorded = set(known["known"].split(", ")) if known else set()
    records = [{"name": name, "translation": decode(name), "type": "name",
                "description": f"(simulated) seen on page {page}"}
               for name in names_in(found.get("source", [])) if name not in recorded]
    return json.dumps(records, ensure_ascii=False)


def decide(prompt: str, bound: set[str], eager: float) -> list[dict[str, Any]]:
    """The tool calls of an eager, imperfect ``auto`` policy on a page's decision turn."""
    page = int(m[1]) if (m := PAGE_OF.search(prompt)) else 1
    lines = blocks(prompt).get("page", [])
    if page <= 1 or not lines:
        return []
    text = "\n".join(lines)
    rng = seeded(prompt)
    summaries_by_chance, pages_by_chance = rng.random() < eager, rng.random() < eager
    calls: list[tuple[str, dict[str, Any]]] = []
    if REFERENCE.search(text) or summaries_by_chance:
        calls.append((VIEW_SUMMARIES, {"pages": None}))
    phrases = [m["word"] for m in PHRASE.finditer(text)]
    if phrases or pages_by_chance:
        calls.append((VIEW_PAGES, {"query": " ".join(phrases) or lines[0], "pages": None}))
    names = [m["stem"] for m in ALIAS.finditer(text)]
    names += [name for name in names_in(lines) if name not in names]
    if names:
        calls.append((LOOKUP_ENTITIES, {"names": names}))
    return [{"name": name, "args": args, "id": f"call_{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls) if name in bound]


@register_sim("translator")
class TranslatorSimChatModel(ToolCallingMixin, BaseChatModel):
    """Simulation: answers the LongMT prompts for the ``qsy`` world (see the module doc)."""

    interference: float = Field(default=0.15, ge=0, le=1, description=(
        "Per line and per context block that resolves nothing on the page: the chance "
        "that one output word is replaced by a word of that block."))
    eager: float = Field(default=0.3, ge=0, le=1, description=(
        "On the decision turn: the chance of calling view_summaries, and of calling "
        "view_pages, when the page does not need it."))

    @property
    def _llm_type(self) -> str:
        return "sim-translator"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return tracing_params("stepwise-sim", kwargs.get("model", MODEL_NAME))

    def answer(self, messages: Sequence[BaseMessage], bound: set[str]) -> tuple[str, list]:
        """The text and tool calls this simulation answers ``messages`` with."""
        heads = (QUERY_HEAD, TRANSLATE_HEAD, SUMMARY_HEAD, ENTITIES_HEAD)
        prompt = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)
                       and m.text.startswith(heads)), "")
        if prompt.startswith(QUERY_HEAD):
            if messages and isinstance(messages[-1], ToolMessage):
                return READY, []
            calls = decide(prompt, bound, self.eager)
            return ("" if calls else NO_MODULES_REPLY), calls  # the prompt's documented reply
        if prompt.startswith(TRANSLATE_HEAD):
            lines = translate_page(prompt, self.interference)
            return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)), []
        if prompt.startswith(SUMMARY_HEAD):
            return summary(prompt), []
        if prompt.startswith(ENTITIES_HEAD):
            return entities(prompt), []
        return NOT_MINE, []

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        bound = {tool.get("function", {}).get("name") for tool in kwargs.get("tools") or []}
        text, calls = self.answer(messages, bound)
        spoken = text + " " + " ".join(json.dumps(call["args"]) for call in calls)
        message = AIMessage(content=text, tool_calls=calls,
                            usage_metadata=word_usage(messages, len(spoken.split())),
                            response_metadata={"model_name": MODEL_NAME, "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=message)])
