"""The LongMT translator's memory: pages, page summaries and entity records, as one value.

The MCTS explorer forks the agent state after every page, so this memory is an immutable
value with structural sharing (pyrsistent vectors and maps): a fork is the same object,
and adding a page builds a new memory that shares every untouched page, summary and
entity with its parent. A step costs O(what changed), never a copy of the document, and
branches of a search tree cannot see each other's writes.
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pyrsistent import PMap, PVector, pmap, pvector

from stepwise.errors import StepwiseError

logger = logging.getLogger(__name__)


class TranslationMemoryError(StepwiseError, ValueError):
    """A page out of order, a summary for an unknown page, or unreadable memory data."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _NamedRecord(_Record):
    """A record whose name and translation are compared stripped, so they are kept stripped."""

    @field_validator("name", "translation", check_fields=False)
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value


class PageRecord(_Record):
    """One finished page: its source sentences and their translations, line by line."""

    number: int = Field(ge=0)
    source: tuple[str, ...]
    translation: tuple[str, ...]

    @model_validator(mode="after")
    def _aligned(self) -> PageRecord:
        if len(self.source) != len(self.translation):
            raise ValueError(f"page {self.number} has {len(self.source)} source sentences "
                             f"but {len(self.translation)} translations")
        return self


class EntityRecord(_NamedRecord):
    """A name and the translation the document uses for it; ``mentions`` lists its pages."""

    name: str
    translation: str
    type: str = ""
    description: str = ""
    first_page: int = Field(ge=0)
    mentions: tuple[int, ...] = ()  # sorted, without repeats, first_page included

    @field_validator("mentions")
    @classmethod
    def _sorted_with_first_page(cls, mentions: tuple[int, ...],
                                info: ValidationInfo) -> tuple[int, ...]:
        pages = set(mentions)
        if info.data.get("first_page") is not None:  # absent when it failed validation
            pages.add(info.data["first_page"])
        return tuple(sorted(pages))


class EntityUpdate(_NamedRecord):
    """What an update_entities step proposes; ``replace`` overrides a recorded translation."""

    name: str
    translation: str
    type: str = ""
    description: str = ""
    replace: bool = False


class EntityConflict(_Record):
    """A proposed translation that differs from the recorded one and was not applied."""

    name: str
    kept: str
    proposed: str
    page: int


def _with_page_mentioned(mentions: tuple[int, ...], page: int) -> tuple[int, ...]:
    """``mentions`` with ``page`` added in order; the same tuple when it is already there."""
    at = bisect.bisect_left(mentions, page)
    if at < len(mentions) and mentions[at] == page:
        return mentions
    return (*mentions[:at], page, *mentions[at:])


_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER",
                     "MYANMAR", "TIBETAN", "IDEOGRAPHIC")


def _needs_boundary(char: str) -> bool:
    """Whether a name edge must not touch another letter: true for scripts written with spaces.

    Chinese, Japanese, Thai and the like run words together, so there a name is found as
    a substring; a word boundary would never match inside such text.
    """
    if not char.isalnum():
        return False
    return not unicodedata.name(char, "").startswith(_UNSPACED_SCRIPTS)


def _name_pattern(name: str) -> re.Pattern[str]:
    before = r"(?<!\w)" if _needs_boundary(name[0]) else ""
    after = r"(?!\w)" if _needs_boundary(name[-1]) else ""
    return re.compile(before + re.escape(name) + after)


class TranslationMemory:
    """Pages, summaries, entities and conflicts of one document: an immutable value.

    Every ``with_*`` method returns a new memory and leaves this one as it was, sharing
    all unchanged parts with it; two memories are equal when their contents are.
    """

    __slots__ = ("_conflicts", "_entities", "_pages", "_summaries")

    _pages: PVector
    _summaries: PMap
    _entities: PMap
    _conflicts: PVector

    def __init__(self) -> None:
        """An empty memory (the same as ``TranslationMemory.empty()``)."""
        self._set(pvector(), pmap(), pmap(), pvector())

    def _set(self, pages: PVector, summaries: PMap, entities: PMap, conflicts: PVector) -> None:
        object.__setattr__(self, "_pages", pages)
        object.__setattr__(self, "_summaries", summaries)
        object.__setattr__(self, "_entities", entities)
        object.__setattr__(self, "_conflicts", conflicts)

    @classmethod
    def _of(cls, pages: PVector, summaries: PMap, entities: PMap,
            conflicts: PVector) -> TranslationMemory:
        memory = cls.__new__(cls)
        memory._set(pages, summaries, entities, conflicts)
        return memory

    def _replace(self, **parts: Any) -> TranslationMemory:
        current = {"pages": self._pages, "summaries": self._summaries,
                   "entities": self._entities, "conflicts": self._conflicts}
        return self._of(**(current | parts))

    @classmethod
    def empty(cls) -> TranslationMemory:
        return cls()

    # -- reading ---------------------------------------------------------------------------

    @property
    def pages(self) -> Sequence[PageRecord]:
        """Finished pages; index = page number."""
        return self._pages

    @property
    def summaries(self) -> Mapping[int, str]:
        return self._summaries

    @property
    def entities(self) -> Mapping[str, EntityRecord]:
        return self._entities

    @property
    def conflicts(self) -> Sequence[EntityConflict]:
        return self._conflicts

    @property
    def page_count(self) -> int:
        return len(self._pages)

    def _known_pages(self, pages: Iterable[int]) -> list[int]:
        """``pages`` that are finished, in the order given, each once (no negative indexes)."""
        return list(dict.fromkeys(p for p in pages if 0 <= p < len(self._pages)))

    def summary_lines(self, pages: Iterable[int]) -> list[tuple[int, str]]:
        """(page, summary) for the given pages that have one; other pages are skipped."""
        return [(p, self._summaries[p]) for p in self._known_pages(pages)
                if p in self._summaries]

    def sentence_pairs(self, pages: Iterable[int]) -> list[tuple[int, int, str, str]]:
        """(page, line in page, source, translation) for the given finished pages."""
        return [(p, line, source, translation) for p in self._known_pages(pages)
                for line, (source, translation)
                in enumerate(zip(self._pages[p].source, self._pages[p].translation))]

    def find_entities(self, names: Iterable[str]) -> list[EntityRecord]:
        """Records for ``names`` in their order: exact name first, else case-insensitive."""
        folded: dict[str, EntityRecord] | None = None
        found: dict[str, EntityRecord] = {}
        for name in names:
            name = name.strip()
            record = self._entities.get(name)
            if record is None:
                if folded is None:  # built once, and only when an exact lookup misses
                    folded = {}
                    for record_name in sorted(self._entities):
                        folded.setdefault(record_name.casefold(), self._entities[record_name])
                record = folded.get(name.casefold())
            if record is not None:
                found.setdefault(record.name, record)
        return list(found.values())

    def entities_in(self, text: str) -> list[EntityRecord]:
        """Records whose name occurs in ``text`` as a whole word, in order of appearance.

        Matching is case-sensitive ("Will" is a name, "will" is not); names in scripts
        written without spaces (Chinese, Japanese, ...) match as substrings.
        """
        hits = []
        for name, record in self._entities.items():
            if name not in text:  # cheap filter before any regular expression
                continue
            match = _name_pattern(name).search(text)
            if match:
                hits.append((match.start(), name, record))
        return [record for _, _, record in sorted(hits, key=lambda hit: hit[:2])]

    # -- writing (each returns a new memory) -----------------------------------------------

    def fork(self) -> TranslationMemory:
        """This memory itself: values never change, so a branch needs no copy (O(1))."""
        return self

    def with_page(self, record: PageRecord) -> TranslationMemory:
        """This memory with the next finished page appended."""
        if record.number != len(self._pages):
            raise TranslationMemoryError(f"page {record.number} cannot follow "
                                         f"{len(self._pages)} finished pages; expected page "
                                         f"{len(self._pages)}")
        return self._replace(pages=self._pages.append(record))

    def with_summary(self, page: int, text: str) -> TranslationMemory:
        """This memory with page ``page``'s summary set (replacing an earlier one)."""
        if not 0 <= page < len(self._pages):
            raise TranslationMemoryError(f"no summary for page {page}: only pages 0 to "
                                         f"{len(self._pages) - 1} are finished")
        if not isinstance(text, str):
            raise TranslationMemoryError(f"the summary of page {page} must be text, not "
                                         f"{type(text).__name__}")
        return self._replace(summaries=self._summaries.set(page, text))

    def _check_entity_page(self, page: int) -> None:
        if not 0 <= page <= len(self._pages):
            raise TranslationMemoryError(f"entities cannot be seen on page {page}: the "
                                         f"document is at page {len(self._pages)}")

    def with_entities(self, updates: Iterable[EntityUpdate], page: int) -> TranslationMemory:
        """This memory with entities seen on ``page`` (a finished page or the next one).

        A new name is recorded; a known name with the same translation gains the page as a
        mention (and an empty type or description is filled); a different translation
        is applied only when ``update.replace`` is set, otherwise the first one is kept
        and the disagreement is recorded as an ``EntityConflict``.
        """
        self._check_entity_page(page)
        entities = self._entities.evolver()
        conflicts = self._conflicts.evolver()
        for update in updates:
            if update.name not in entities:
                entities[update.name] = EntityRecord(
                    name=update.name, translation=update.translation, type=update.type,
                    description=update.description, first_page=page, mentions=(page,))
                continue
            known = entities[update.name]
            same = known.translation == update.translation  # both stripped by validation
            if not same and not update.replace:
                conflict = EntityConflict(name=update.name, kept=known.translation,
                                          proposed=update.translation, page=page)
                conflicts.append(conflict)
                logger.info("entity %r on page %d: kept translation %r, not %r",
                            update.name, page, known.translation, update.translation)
                continue
            changes: dict[str, Any] = {"mentions": _with_page_mentioned(known.mentions, page)}
            if not same:
                changes["translation"] = update.translation
            for field in ("type", "description"):
                proposed = getattr(update, field)
                if proposed and (not getattr(known, field) or not same):
                    changes[field] = proposed
            updated = known.model_copy(update=changes)
            if updated != known:
                entities[update.name] = updated
        return self._replace(entities=entities.persistent(), conflicts=conflicts.persistent())

    def mention(self, names: Iterable[str], page: int) -> TranslationMemory:
        """This memory with ``page`` added to the mentions of the known ``names``."""
        self._check_entity_page(page)
        entities = self._entities.evolver()
        for name in names:
            name = name.strip()
            if name in entities:
                known = entities[name]
                mentions = _with_page_mentioned(known.mentions, page)
                if mentions is not known.mentions:
                    entities[name] = known.model_copy(update={"mentions": mentions})
        return self._replace(entities=entities.persistent())

    # -- plain data ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able plain data; entities sorted by (first page, name) for stable output."""
        entities = sorted(self._entities.values(), key=lambda e: (e.first_page, e.name))
        return {
            "pages": [page.model_dump(mode="json") for page in self._pages],
            "summaries": {str(p): self._summaries[p] for p in sorted(self._summaries)},
            "entities": [entity.model_dump(mode="json") for entity in entities],
            "conflicts": [conflict.model_dump(mode="json") for conflict in self._conflicts],
        }

    @classmethod
    def from_dict(cls, data: Any) -> TranslationMemory:
        """The memory ``to_dict`` described; TranslationMemoryError names what is wrong."""
        if not isinstance(data, Mapping):
            raise TranslationMemoryError(f"memory data must be a mapping, not "
                                         f"{type(data).__name__}")
        unknown = set(data) - {"pages", "summaries", "entities", "conflicts"}
        if unknown:
            raise TranslationMemoryError(f"memory data has unknown keys: {sorted(unknown)}")
        pages = _records(PageRecord, data, "pages")
        summaries = {_page_key(key): _text(key, text)
                     for key, text in _items(data, "summaries", dict).items()}
        entities = _records(EntityRecord, data, "entities")
        conflicts = _records(EntityConflict, data, "conflicts")
        for index, page in enumerate(pages):
            if page.number != index:
                raise TranslationMemoryError(f"bad memory data: page {page.number} stored "
                                             f"at position {index}")
        stray = [p for p in summaries if not 0 <= p < len(pages)]
        if stray:
            raise TranslationMemoryError(f"bad memory data: summaries for unknown pages {stray}")
        by_name = {entity.name: entity for entity in entities}
        if len(by_name) != len(entities):
            raise TranslationMemoryError("bad memory data: an entity name is listed twice")
        return cls._of(pvector(pages), pmap(summaries), pmap(by_name), pvector(conflicts))

    # -- value semantics -------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TranslationMemory):
            return NotImplemented
        return self is other or (
            self._pages == other._pages and self._summaries == other._summaries
            and self._entities == other._entities and self._conflicts == other._conflicts)

    def __hash__(self) -> int:
        return hash((self._pages, self._summaries, self._entities, self._conflicts))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TranslationMemory is immutable; use its with_* methods")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TranslationMemory is immutable; use its with_* methods")

    def __copy__(self) -> TranslationMemory:
        return self

    def __deepcopy__(self, memo: dict) -> TranslationMemory:
        return self  # immutable: even a deep copy (LangGraph state, copy.deepcopy) is free

    def __reduce__(self) -> tuple:
        return (TranslationMemory._of,
                (self._pages, self._summaries, self._entities, self._conflicts))

    def __repr__(self) -> str:
        return (f"TranslationMemory(pages={len(self._pages)}, "
                f"summaries={len(self._summaries)}, entities={len(self._entities)}, "
                f"conflicts={len(self._conflicts)})")


def _items(data: Mapping, key: str, kind: type) -> Any:
    value = data.get(key, kind())
    if not isinstance(value, kind):
        raise TranslationMemoryError(f"bad memory data: {key} must be a {kind.__name__}, "
                                     f"not {type(value).__name__}")
    return value


def _records(kind: type[_Record], data: Mapping, key: str) -> list:
    """``data[key]`` validated as a list of ``kind``; the first problem as one line."""
    records = []
    for index, item in enumerate(_items(data, key, list)):
        try:
            records.append(kind.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f".{part}" for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            raise TranslationMemoryError(f"bad memory data: {key}[{index}]{where}: "
                                         f"{message}") from None
    return records


def _page_key(key: Any) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise TranslationMemoryError(f"bad memory data: summary key {key!r} is not a page "
                                     "number") from None


def _text(key: Any, value: Any) -> str:
    if not isinstance(value, str):
        raise TranslationMemoryError(f"bad memory data: summary {key!r} is "
                                     f"{type(value).__name__}, not text")
    return value
