"""Forking LongMT memory after page k and adding a page: persistent values vs deepcopy.

The explorer forks the translator's state after every page, and each branch then stores
one more page (page record, summary, entity updates). Ours forks a ``TranslationMemory``
(the same value) and applies ``with_page``, ``with_summary`` and ``with_entities``,
records built inside the timing. The baseline keeps the same memory as plain data (a dict
of lists and dicts), forks it with ``copy.deepcopy`` and applies the same update in
place. Pages have 10 sentences of 20 words on both sides; each page brings 3 new entities
and mentions 2 known ones. Ours should stay flat in k; a deep copy grows with the document.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import percentile, rounded
from stepwise.memory.translation import EntityUpdate, PageRecord, TranslationMemory

SENTENCES_PER_PAGE = 10
WORDS_PER_SENTENCE = 20
NEW_ENTITIES_PER_PAGE = 3
KNOWN_ENTITIES_PER_PAGE = 2
SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "su", "vel", "dor", "an", "is", "pre", "mon")


@dataclass(frozen=True)
class PageContent:
    """What translating one page produces; both memories store exactly this."""

    number: int
    source: tuple[str, ...]
    translation: tuple[str, ...]
    summary: str
    entities: tuple[tuple[str, str, str, str], ...]  # name, translation, type, description


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def hanzi(rng: random.Random, count: int) -> str:
    return "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(count))


def new_entities(number: int) -> list[tuple[str, str, str, str]]:
    """The entities page ``number`` introduces (depends on nothing else)."""
    rng = random.Random(f"entities {number}")
    return [(f"{word(rng).capitalize()} {number}-{i}", hanzi(rng, 3), "person",
             f"met on page {number}") for i in range(NEW_ENTITIES_PER_PAGE)]


def page_content(number: int) -> PageContent:
    rng = random.Random(number)
    source = tuple(" ".join(word(rng) for _ in range(WORDS_PER_SENTENCE)).capitalize() + "."
                   for _ in range(SENTENCES_PER_PAGE))
    translation = tuple(hanzi(rng, 2 * WORDS_PER_SENTENCE) + "。"
                        for _ in range(SENTENCES_PER_PAGE))
    summary = " ".join(word(rng) for _ in range(30)).capitalize() + "."
    earlier = rng.sample(range(number), min(number, KNOWN_ENTITIES_PER_PAGE))
    known = [new_entities(page)[0] for page in earlier]
    return PageContent(number, source, translation, summary, (*new_entities(number), *known))


def ours_add(memory: TranslationMemory, page: PageContent) -> TranslationMemory:
    updates = [EntityUpdate(name=name, translation=translation, type=kind, description=about)
               for name, translation, kind, about in page.entities]
    record = PageRecord(number=page.number, source=page.source, translation=page.translation)
    return memory.with_page(record).with_summary(page.number, page.summary) \
        .with_entities(updates, page.number)


def baseline_add(memory: dict, page: PageContent) -> dict:
    """The same update on plain data, in place (the caller forked it first)."""
    memory["pages"].append({"number": page.number, "source": list(page.source),
                            "translation": list(page.translation)})
    memory["summaries"][page.number] = page.summary
    for name, translation, kind, about in page.entities:
        known = memory["entities"].get(name)
        if known is None:
            memory["entities"][name] = {"name": name, "translation": translation, "type": kind,
                                        "description": about, "first_page": page.number,
                                        "mentions": [page.number]}
        elif known["translation"] != translation:
            memory["conflicts"].append({"name": name, "kept": known["translation"],
                                        "proposed": translation, "page": page.number})
        elif page.number not in known["mentions"]:
            known["mentions"].append(page.number)
    return memory


def build(pages: list[PageContent]) -> tuple[TranslationMemory, dict]:
    ours = TranslationMemory.empty()
    plain: dict = {"pages": [], "summaries": {}, "entities": {}, "conflicts": []}
    for page in pages:
        ours = ours_add(ours, page)
        plain = baseline_add(plain, page)
    return ours, plain


def time_calls(call: Callable[[], object], times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(k: int, pages: list[PageContent], rounds: int, block: int) -> tuple[float, float]:
    """Median seconds for fork + one page at page k: (ours, baseline), blocks alternating."""
    ours_memory, plain_memory = build(pages[:k])
    next_page = pages[k]

    def ours() -> TranslationMemory:
        return ours_add(ours_memory.fork(), next_page)

    def baseline() -> dict:
        return baseline_add(copy.deepcopy(plain_memory), next_page)

    branch, plain_branch = ours(), baseline()  # warm-up, and the two must agree
    assert branch.page_count == k + 1 and ours_memory.page_count == k
    assert len(plain_branch["pages"]) == k + 1 and len(plain_memory["pages"]) == k
    assert len(branch.entities) == len(plain_branch["entities"])
    assert len(branch.conflicts) == len(plain_branch["conflicts"])
    ours_seconds: list[float] = []
    baseline_seconds: list[float] = []
    for index, _ in enumerate(range(0, rounds, block)):
        pair = [(ours, ours_seconds), (baseline, baseline_seconds)]
        for call, seconds in (reversed(pair) if index % 2 else pair):
            seconds.extend(time_calls(call, block))
    return percentile(ours_seconds, 0.5), percentile(baseline_seconds, 0.5)


def run(quick: bool = False) -> dict:
    ks = (10, 40, 160) if quick else (10, 40, 160, 640)
    rounds, block = (20, 5) if quick else (100, 10)
    pages = [page_content(number) for number in range(max(ks) + 1)]
    ours_us: dict[str, float] = {}
    baseline_us: dict[str, float] = {}
    for k in ks:
        ours_seconds, baseline_seconds = measure(k, pages, rounds, block)
        ours_us[str(k)], baseline_us[str(k)] = ours_seconds * 1e6, baseline_seconds * 1e6
    first, last = str(ks[0]), str(ks[-1])
    return {
        "figures": {
            "ours_us": {k: rounded(v) for k, v in ours_us.items()},
            "kmax_over_kmin": rounded(ours_us[last] / ours_us[first]),
            "median_us": rounded(ours_us[last]),
            "pages_k": list(ks), "rounds_per_k": rounds, "block_size": block,
            "sentences_per_page": SENTENCES_PER_PAGE, "words_per_sentence": WORDS_PER_SENTENCE,
            "new_entities_per_page": NEW_ENTITIES_PER_PAGE,
            "known_entities_per_page": KNOWN_ENTITIES_PER_PAGE,
        },
        "baseline": {
            "what": "plain-dict memory (dict of lists of dicts) forked with copy.deepcopy, "
                    "then the same page, summary and entity update applied in place",
            "us": {k: rounded(v) for k, v in baseline_us.items()},
            "kmax_over_kmin": rounded(baseline_us[last] / baseline_us[first]),
            "median_us": rounded(baseline_us[last]),
        },
        "ratio": {"value": rounded(baseline_us[last] / ours_us[last]),
                  "ratio_of": f"median µs per fork + one page at k={last}, "
                              "deepcopy baseline over ours"},
    }
