"""Making the simulated translation world's documents: English text turned into ``qsy``.

Each document is one of six bundled English texts, encoded letter by letter, with a few
seeded *terms* whose later occurrences are replaced by marked forms (see ``language``):
an entity's alias, a reference's bare code, a phrase's abbreviation. The first occurrence
of a term stays readable (a reference gets its gloss there); a marked form comes at least
``gap`` sentences later, so with pages of at most ``gap`` sentences it is never on the
page that introduces it, and only memory of earlier pages can resolve it. The English is
the reference: every score on this world is a score of a simulation.

Sentences are counted as the agent pages the source, with the sentence splitter on the
``qsy`` text; a marked form that would change where a sentence ends is not made.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stepwise.documents import split_sentences
from stepwise.documents.sentences import ABBREVIATIONS
from stepwise.errors import StepwiseError
from stepwise.files import write_atomic
from stepwise.sim.translation.language import (
    LANGUAGE,
    MARKED,
    WORD,
    decode,
    encode,
    strip_marks,
)

WORLD = "translation"
TEXTS = 6
TARGET = "en"
MARK_PROBABILITY = (0.5, 0.7)  # per document, drawn from this range

_STOPWORDS = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each even ever few
for from further had has have having he her here hers herself him himself his how however
into is it its itself just like made make many may me might more most much must my myself
never no nor not now of off on once only or other ought our ours ourselves out over own
perhaps quite rather really same shall she should since so some something still such than
that the their theirs them themselves then there these they this those though through thus
to too under until up upon very was we were what when where whether which while who whom
whose why will with within without would yet you your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORDS.split())

Kind = Literal["entity", "reference", "phrase"]


class Term(BaseModel):
    """One marked term: its marked form, its English, and where it is introduced and used."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    marker: str = Field(description="The marked form in the source: ~Xyz, ^cod or *word.")
    target: str = Field(description="What it stands for in English.")
    intro: int = Field(description="The sentence (from 0) where it is introduced readably.")
    uses: list[int] = Field(description="The sentences (from 0) of its marked occurrences.")


class SyntheticDocument(BaseModel):
    """A simulated document: ``qsy`` source lines, the English lines, and its terms."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: int = Field(description="Which bundled English text (0-5).")
    seed: int
    gap: int
    mark_probability: float
    src: list[str]
    ref: list[str]
    terms: list[Term]

    @property
    def sentences(self) -> int:
        return sum(1 for line in self.src for s in split_sentences(line, LANGUAGE) if s.strip())

    def row(self) -> dict[str, Any]:
        """The dataset row (``dataset.jsonl``)."""
        return {"id": self.id, "src": "\n".join(self.src), "ref": "\n".join(self.ref),
                "src_lang": LANGUAGE, "tgt_lang": TARGET, "world": WORLD, "seed": self.seed,
                "terms": [term.model_dump() for term in self.terms]}


@cache
def english_text(index: int) -> tuple[str, ...]:
    """The lines of bundled English text ``index`` (0-5), exactly as shipped."""
    if not 0 <= index < TEXTS:
        raise StepwiseError(f"no bundled text {index} (there are {TEXTS}: 0-{TEXTS - 1})")
    raw = resources.files(__package__).joinpath(f"data/doc{index}.txt").read_text("utf-8")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return tuple(lines)


@dataclass(frozen=True)
class _Word:
    line: int
    start: int
    end: int
    sentence: int
    first: bool  # the first word of its sentence
    text: str


@dataclass
class _Plan:
    kind: Kind
    marker: str
    target: str
    intro: _Word
    uses: list[_Word]
    intro_edit: str | None = None  # a reference's gloss
    span: int = 1  # words a use replaces (2 for a phrase)


def _sentence_count(line: str) -> int:
    return sum(1 for s in split_sentences(line, LANGUAGE) if s.strip())


def _words(lines: Sequence[str]) -> list[_Word]:
    """Every ASCII word with its sentence, counted on the encoded text as the agent pages it."""
    words: list[_Word] = []
    sentence = 0
    for number, line in enumerate(lines):
        offset = 0
        for part in split_sentences(encode(line), LANGUAGE):
            if part.strip():
                for i, match in enumerate(WORD.finditer(line, offset, offset + len(part))):
                    words.append(_Word(number, match.start(), match.end(), sentence, i == 0,
                                       match.group()))
                sentence += 1
            offset += len(part)
    return words


def _alias(name: str, capitalised: set[str]) -> str | None:
    """The shortest prefix (3 letters or more, shorter than the name) no other word shares."""
    others = capitalised - {name}
    for size in range(3, len(name)):
        if not any(word.startswith(name[:size]) for word in others):
            return name[:size]
    return None


def _entities(words: list[_Word], gap: int) -> list[_Plan]:
    common = {w.text for w in words if w.text.islower()} | STOPWORDS
    capitalised = {w.text for w in words if w.text[0].isupper()}
    plans = []
    for name in sorted(capitalised):
        if not re.fullmatch(r"[A-Z][a-z]{3,}", name) or name.lower() in common:
            continue
        mid = [w for w in words if w.text == name and not w.first]
        alias = _alias(name, capitalised)
        if not mid or alias is None:
            continue
        uses = [w for w in mid[1:] if w.sentence >= mid[0].sentence + gap]
        plans.append(_Plan("entity", "~" + encode(alias), name, mid[0], uses))
    return plans


def _references(words: list[_Word], gap: int) -> list[_Plan]:
    plans = []
    for word in sorted({w.text for w in words if re.fullmatch(r"[a-z]{6,}", w.text)} - STOPWORDS):
        found = [w for w in words if w.text == word]
        uses = [w for w in found[1:] if w.sentence >= found[0].sentence + gap]
        plans.append(_Plan("reference", "", word, found[0], uses))
    return plans


def _phrases(words: list[_Word], lines: Sequence[str], gap: int) -> list[_Plan]:
    def following(i: int) -> str | None:
        here, there = words[i], words[i + 1] if i + 1 < len(words) else None
        if (there and there.line == here.line and there.sentence == here.sentence
                and lines[here.line][here.end:there.start] == " " and there.text.islower()):
            return there.text
        return None

    plans = []
    firsts = sorted({w.text for w in words if re.fullmatch(r"[a-z]{4,}", w.text)} - STOPWORDS)
    for first in firsts:
        found = [i for i, w in enumerate(words) if w.text == first]
        second = following(found[0])
        if second is None:
            continue
        uses = []
        for i in found[1:]:
            if following(i) != second:
                break  # from here on the earlier pages no longer say what follows
            if words[i].sentence >= words[found[0]].sentence + gap:
                uses.append(words[i])
        plans.append(_Plan("phrase", "*" + encode(first), f"{first} {second}", words[found[0]],
                           uses, span=2))
    return plans


def _edit(line: str, word: _Word, replacement: str, span: int, words: list[_Word]) -> str:
    """``line`` (encoded) with ``span`` words from ``word`` replaced."""
    end = word.end
    if span == 2:
        index = words.index(word)
        end = words[index + 1].end
    return line[:word.start] + replacement + line[end:]


def _splits_kept(plain: str, marked: str) -> bool:
    return _sentence_count(plain) == _sentence_count(marked)


def _code(rng: random.Random, taken: set[str]) -> str:
    while True:
        code = "".join(rng.choice(string.ascii_lowercase) for _ in range(3))
        if code not in taken and code not in ABBREVIATIONS:
            taken.add(code)
            return code


def make_document(index: int, seed: int, *, gap: int = 10,
                  mark_probability: tuple[float, float] = MARK_PROBABILITY,
                  entities: int = 3, references: int = 2, phrases: int = 2) -> SyntheticDocument:
    """Synthetic document ``index`` of a world seeded with ``seed`` (text ``index % 6``)."""
    rng = random.Random(f"stepwise/sim/translation/{seed}/{index}")
    english = [strip_marks(line) for line in english_text(index % TEXTS)]
    encoded = [encode(line) for line in english]
    words = _words(english)
    probability = round(rng.uniform(*mark_probability), 3)

    def one_mark_ok(word: _Word, replacement: str, span: int) -> bool:
        line = encoded[word.line]
        return _splits_kept(line, _edit(line, word, replacement, span, words))

    taken_words: set[str] = set()
    codes: set[str] = set()
    chosen: list[_Plan] = []
    for candidates, most in ((_entities(words, gap), entities),
                             (_references(words, gap), references),
                             (_phrases(words, english, gap), phrases)):
        rng.shuffle(candidates)
        count = 0
        for plan in candidates:
            if count == most:
                break
            term_words = set(plan.target.split())
            if not plan.uses or term_words & taken_words:
                continue
            if plan.kind == "reference":
                plan.marker = "^" + _code(rng, codes)
                plan.intro_edit = encode(plan.target) + plan.marker
                if not one_mark_ok(plan.intro, plan.intro_edit, 1):
                    continue
            plan.uses = [w for w in plan.uses if rng.random() < probability
                         and one_mark_ok(w, plan.marker, plan.span)]
            if not plan.uses:
                continue
            taken_words |= term_words
            chosen.append(plan)
            count += 1

    edits: dict[int, list[tuple[_Word, str, int]]] = {}
    for plan in chosen:
        if plan.intro_edit:
            edits.setdefault(plan.intro.line, []).append((plan.intro, plan.intro_edit, 1))
        for use in plan.uses:
            edits.setdefault(use.line, []).append((use, plan.marker, plan.span))
    src = list(encoded)
    for number, line_edits in edits.items():
        for word, replacement, span in sorted(line_edits, key=lambda e: e[0].start, reverse=True):
            src[number] = _edit(src[number], word, replacement, span, words)
        if not _splits_kept(encoded[number], src[number]):  # never seen; kept as a guard
            raise StepwiseError(f"marks changed the sentences of line {number} of text "
                                f"{index % TEXTS}")

    terms = [Term(kind=plan.kind, marker=plan.marker, target=plan.target,
                  intro=plan.intro.sentence, uses=[w.sentence for w in plan.uses])
             for plan in chosen]
    return SyntheticDocument(id=f"synth-{index:03d}", text=index % TEXTS, seed=seed, gap=gap,
                             mark_probability=probability, src=src, ref=english, terms=terms)


def make_documents(count: int, seed: int, *, gap: int = 10,
                   mark_probability: tuple[float, float] = MARK_PROBABILITY,
                   entities: int = 3, references: int = 2,
                   phrases: int = 2) -> list[SyntheticDocument]:
    """``count`` simulated documents; the same arguments always give the same documents.

    Document ``i`` uses bundled text ``i % 6``; documents sharing a text differ in their
    seeded terms. ``gap``: the fewest sentences between a term's introduction and a
    marked use (keep it at least the page size). At most ``entities``, ``references`` and
    ``phrases`` terms of each kind, as far as the text has candidates.
    """
    if count < 1:
        raise StepwiseError("make at least one document (--docs >= 1)")
    if gap < 1:
        raise StepwiseError("the gap between a term's introduction and its uses must be >= 1")
    low, high = mark_probability
    if not 0 <= low <= high <= 1:
        raise StepwiseError(f"mark probability range {mark_probability} must lie within 0-1")
    return [make_document(i, seed, gap=gap, mark_probability=mark_probability,
                          entities=entities, references=references, phrases=phrases)
            for i in range(count)]


def reveal(text: str, terms: Sequence[Term]) -> str:
    """The English of ``qsy`` text, using the answer key: what a perfect translator writes."""
    targets = {term.marker: term.target for term in terms}

    def one(match: re.Match[str]) -> str:
        if match["alias"]:
            return targets["~" + match["alias"]]
        if match["word"]:
            return decode(match["word"])
        if match["ref"]:
            return targets["^" + match["ref"]]
        return targets["*" + match["phrase"]]

    out, last = [], 0
    for match in MARKED.finditer(text):
        out += [decode(text[last:match.start()]), one(match)]
        last = match.end()
    return "".join([*out, decode(text[last:])])


def write_dataset(docs: Sequence[SyntheticDocument], out_dir: str | Path) -> Path:
    """``out_dir/dataset.jsonl`` (one row per document) and ``out_dir/world.json``."""
    if not docs:
        raise StepwiseError("no documents to write")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepwiseError(f"{out}: cannot create the folder ({exc.strerror})") from None
    rows = "".join(json.dumps(doc.row(), ensure_ascii=False) + "\n" for doc in docs)
    world = {
        "world": WORLD, "simulated": True, "src_lang": LANGUAGE, "tgt_lang": TARGET,
        "seed": docs[0].seed, "gap": docs[0].gap, "docs": len(docs),
        "texts": "English sides of six WMT24++ documents (google/wmt24pp, Apache-2.0)",
        "note": "A simulated language and simulated documents; scores on them are scores "
                "of a simulation, not of translation quality.",
        "documents": [{"id": d.id, "text": d.text, "mark_probability": d.mark_probability,
                       "sentences": d.sentences, "terms": len(d.terms)} for d in docs],
    }
    write_atomic(out / "dataset.jsonl", rows)
    write_atomic(out / "world.json", json.dumps(world, indent=2) + "\n")
    return out / "dataset.jsonl"
