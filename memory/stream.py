"""The generative agents' memory stream (Park et al. 2023): what an agent lived, and recall.

Every observation, reflection, plan and chat line is a memory with an importance (1-10),
a creation time and a last-access time in game time, and an embedding. ``retrieve`` ranks
memories by recency, importance and relevance to a query (see ``stepwise.memory.retrieval``
for the arithmetic) and marks what it returns as accessed, which keeps used memories
fresh. Reflections cite the memories they were drawn from (``evidence``) and sit one
level above the deepest of them (``depth``).

Ids are positions: the n-th memory added to a stream has id n - 1, starting at 0. Times
are game times from the injected clock (or ``now`` / ``created``); a stream holds either
naive or timezone-aware datetimes, not both, and gives aware ones back in UTC.
"""

from __future__ import annotations

import math
import numbers
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy
from langchain_core.embeddings import Embeddings

from stepwise.memory.columns import MemoryColumns
from stepwise.memory.embeddings import CachedQueryEmbeddings, default_embeddings
from stepwise.memory.game_time import GameTimes
from stepwise.memory.retrieval import (
    PRESETS,
    check_decay,
    check_weights,
    cosine,
    min_max,
    recency,
    top_k,
)
from stepwise.memory.stream_db import StoredRow, StreamTable

__all__ = ["PRESETS", "Memory", "MemoryStream", "RetrievedMemory", "UnknownEvidence"]

MIN_IMPORTANCE, MAX_IMPORTANCE = 1.0, 10.0


class UnknownEvidence(ValueError):
    """Evidence that cites memories the stream does not hold; ``ids`` names them."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = tuple(ids)
        super().__init__(f"evidence cites memories that do not exist: {list(self.ids)}")


@dataclass(frozen=True)
class Memory:
    """One memory. ``evidence`` lists the ids a reflection was drawn from."""

    id: int
    text: str
    kind: str  # "observation", "reflection", "plan", "chat", or any other label
    importance: float  # 1-10, as given
    created: datetime
    last_accessed: datetime
    depth: int  # 0 for what was observed; 1 + the deepest evidence for a reflection
    evidence: tuple[int, ...]


@dataclass(frozen=True)
class RetrievedMemory(Memory):
    """A memory as ``retrieve`` ranked it.

    ``recency``, ``importance_score`` and ``relevance`` are the three components after
    min-max normalisation over the memories ranked (each in [0, 1]; 0.5 when that
    component was equal for all of them); ``score`` is their weighted sum, the ranking
    key. ``cosine`` is the raw cosine similarity to the query. ``last_accessed`` is the
    time of this retrieval (or a later access already recorded); the recency component
    used the access before it.
    """

    score: float
    recency: float
    importance_score: float
    relevance: float
    cosine: float


class MemoryStream:
    """One agent's memories, scored in numpy columns, optionally persisted in SQLite.

    ``embeddings`` defaults to the bundled all-MiniLM-L6-v2, loaded on first need; query
    vectors are cached (an LRU keyed by text). ``preset`` names the weights and decay in
    ``PRESETS``; ``weights`` (recency, importance, relevance) and ``decay`` (per game hour
    since last access) override it. ``clock`` gives the game time when ``now`` or
    ``created`` is not given (the wall clock without one). ``db`` is a SQLite file or an
    open connection shared with other tables; the rows of ``agent`` are loaded back when
    the stream is opened and every change is written through. One stream object per
    agent writes to a file at a time.
    """

    def __init__(self, embeddings: Embeddings | None = None, preset: str = "paper", *,
                 weights: tuple[float, float, float] | None = None, decay: float | None = None,
                 clock: Callable[[], datetime] | None = None,
                 db: str | Path | sqlite3.Connection | None = None,
                 agent: str = "default") -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown retrieval preset {preset!r} (known: {', '.join(PRESETS)})")
        self.preset = preset
        self.weights = check_weights(PRESETS[preset].weights if weights is None else weights)
        self.decay = check_decay(PRESETS[preset].decay if decay is None else decay)
        self.clock = clock or datetime.now
        self.agent = agent
        self._given_embeddings = embeddings
        self._embeddings: CachedQueryEmbeddings | None = None
        self._columns = MemoryColumns()
        self._times = GameTimes()
        self._row_by_text: dict[str, int] = {}  # a repeated text reuses its embedding
        table = None if db is None else StreamTable(db, agent)
        self._table: StreamTable | HeldWrites | None = table
        if table is not None:
            self._load(table.load())

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._columns.size

    def __contains__(self, memory_id: object) -> bool:
        return isinstance(memory_id, int | numpy.integer) and 0 <= memory_id < len(self)

    def get(self, memory_id: int) -> Memory:
        """The memory with ``memory_id``; KeyError when there is none."""
        if memory_id not in self:
            raise KeyError(f"no memory {memory_id!r} in the stream of {self.agent!r} "
                           f"({len(self)} memories, ids 0-{len(self) - 1})")
        return self._memory(int(memory_id))

    def memories(self, kinds: Sequence[str] | str | None = None) -> list[Memory]:
        """All memories (of ``kinds``) in insertion order."""
        rows = self._rows(None, kinds)
        return [self._memory(int(row)) for row in (range(len(self)) if rows is None else rows)]

    def recent(self, n: int, kinds: Sequence[str] | str | None = None) -> list[Memory]:
        """The ``n`` newest memories (of ``kinds``) by creation time, newest first."""
        if n < 0:
            raise ValueError(f"n is a count of memories, not {n}")
        rows = self._rows(None, kinds)
        rows = numpy.arange(len(self)) if rows is None else rows
        order = numpy.lexsort((-rows, -self._columns.created[rows]))[:n]
        return [self._memory(int(row)) for row in rows[order]]

    def importance_since(self, memory_id_exclusive: int | None) -> float:
        """Summed importance of the memories added after ``memory_id_exclusive`` (all: None).

        Reflection is triggered when this passes a threshold (150 in the paper).
        """
        if memory_id_exclusive is None:
            return float(self._columns.importance[:len(self)].sum())
        if memory_id_exclusive not in self:
            raise KeyError(f"no memory {memory_id_exclusive!r} in the stream of {self.agent!r}")
        return float(self._columns.importance[memory_id_exclusive + 1:len(self)].sum())

    # -- writing -----------------------------------------------------------------------

    def add(self, text: str, *, importance: float, created: datetime | None = None,
            kind: str = "observation", evidence: Sequence[int] = (), depth: int | None = None,
            embedding: Sequence[float] | None = None) -> int:
        """Store one memory and return its id (see ``add_many``)."""
        return self.add_many([text], importances=[importance], created=created, kind=kind,
                             evidence=[evidence], depths=[depth],
                             embeddings=None if embedding is None else [embedding])[0]

    def add_many(self, texts: Sequence[str], *, importances: Sequence[float] | float,
                 created: datetime | Sequence[datetime] | None = None,
                 kind: str | Sequence[str] = "observation",
                 evidence: Sequence[Sequence[int]] | None = None,
                 depths: Sequence[int | None] | None = None,
                 embeddings: Sequence[Sequence[float]] | numpy.ndarray | None = None,
                 ) -> list[int]:
        """Store memories and return their ids; texts are embedded in one batched call.

        Per text (or one value for all): ``importances`` in 1-10, ``created`` (default:
        the clock), ``kind``; per text only: ``evidence`` (ids of existing memories, or of
        earlier texts of this batch), ``depths`` (default 0 without evidence, else 1 + the
        deepest evidence) and ``embeddings`` (precomputed vectors, skipping the model). A
        text already in the stream reuses its embedding. Nothing is stored unless all are
        valid.
        """
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise TypeError("texts is a sequence of strings")
        texts = list(texts)
        count = len(texts)
        if count == 0:
            return []
        first = len(self)
        importance = _per_text("importances", importances, count, numbers.Real)
        for value in importance:
            if not (isinstance(value, numbers.Real) and math.isfinite(value)
                    and MIN_IMPORTANCE <= value <= MAX_IMPORTANCE):
                raise ValueError(f"importance is a number from 1 to 10, not {value!r}")
        moments = _per_text("created", self.clock() if created is None else created, count,
                            datetime)
        created_us = [self._times.micros(moment) for moment in moments]
        kinds = _per_text("kind", kind, count, str)
        if not all(isinstance(name, str) for name in kinds):
            raise TypeError("a memory's kind is a string")
        cited = [tuple(int(i) for i in ids)
                 for ids in ([()] * count if evidence is None else evidence)]
        explicit_depths = list(depths) if depths is not None else [None] * count
        if len(cited) != count or len(explicit_depths) != count:
            raise ValueError(f"evidence and depths need one entry per text ({count})")
        levels = self._depths(first, cited, explicit_depths)
        vectors = self._vectors_for(texts, embeddings)
        if self._table is not None:
            moments = [self._times.moment(us) for us in created_us]  # as they will read back
            self._table.insert(StoredRow(first + i, texts[i], kinds[i], float(importance[i]),
                                         moments[i], moments[i], levels[i], cited[i], vectors[i])
                               for i in range(count))
        self._columns.append(texts, vectors, importance, created_us, created_us, kinds, levels,
                             cited)
        for offset, text in enumerate(texts):
            self._row_by_text.setdefault(text, first + offset)
        return list(range(first, first + count))

    # -- retrieval ---------------------------------------------------------------------

    def retrieve(self, query: str | Sequence[str], *, k: int = 10, now: datetime | None = None,
                 candidates: Sequence[int] | None = None,
                 kinds: Sequence[str] | str | None = None,
                 ) -> list[RetrievedMemory] | list[list[RetrievedMemory]]:
        """The ``k`` best memories for ``query`` (a string), or per query (a list of them).

        Normalisation runs over the whole stream, or over ``candidates`` and / or
        ``kinds`` when given (the memories not named are not ranked at all). Several
        queries are embedded, scored in one matrix product and ranked against the stream
        as it was before the call. Everything returned is marked accessed at ``now``
        (default: the clock), persisted; a later access already recorded is kept (a last
        access never moves back). An empty stream (or selection) gives ``[]`` per query.
        """
        if not isinstance(k, numbers.Integral) or k <= 0:
            raise ValueError(f"k is a positive number of memories, not {k!r}")
        k = int(k)
        single = isinstance(query, str)
        queries = [query] if single else list(query)
        if not all(isinstance(text, str) for text in queries):
            raise TypeError("a query is a string or a sequence of strings")
        rows = self._rows(candidates, kinds)
        if not queries:
            return []
        if len(self) == 0 or (rows is not None and rows.size == 0):
            return [] if single else [[] for _ in queries]
        now_us = self._times.micros(self.clock() if now is None else now)
        ranked = self._rank(self._query_matrix(queries), rows, now_us, k)
        touched = numpy.unique(numpy.concatenate([ids for ids, _ in ranked]))
        touched = touched[self._columns.accessed[touched] < now_us]  # never moves back
        if self._table is not None and touched.size:
            self._table.touch(touched.tolist(), self._times.moment(now_us))
        self._columns.accessed[touched] = now_us
        results = [[self._retrieved(int(memory_id), *parts) for memory_id, *parts in
                    zip(ids.tolist(), *components)] for ids, components in ranked]
        return results[0] if single else results

    def _rank(self, query_matrix: numpy.ndarray, rows: numpy.ndarray | None, now_us: int,
              k: int) -> list[tuple[numpy.ndarray, tuple[list[float], ...]]]:
        """Per query: the ids of the top k and their (score, recency, importance,
        relevance, cosine). Arrays are queries x memories, so each query's row is
        contiguous for normalisation and argpartition."""
        columns = self._columns
        count = len(self)
        if rows is None:
            ids = numpy.arange(count)
            vectors = columns.vectors[:count]
            accessed, created = columns.accessed[:count], columns.created[:count]
            importance = columns.importance[:count]
        else:
            ids, vectors = rows, columns.vectors
            accessed, created = columns.accessed[rows], columns.created[rows]
            importance = columns.importance[rows]
        similarity = cosine(vectors, query_matrix, rows)
        recency_part = min_max(recency(accessed, now_us, self.decay))
        importance_part = min_max(importance)
        relevance_part = min_max(similarity)
        recency_weight, importance_weight, relevance_weight = self.weights
        scores = recency_weight * recency_part + importance_weight * importance_part \
            + relevance_weight * relevance_part  # queries x memories
        ranked = []
        for query, query_scores in enumerate(scores):
            best = top_k(query_scores, k, (accessed, created, ids))
            ranked.append((ids[best], (
                query_scores[best].tolist(), recency_part[best].tolist(),
                importance_part[best].tolist(), relevance_part[query, best].tolist(),
                similarity[query, best].tolist())))
        return ranked

    def _query_matrix(self, queries: list[str]) -> numpy.ndarray:
        embeddings = self.embeddings
        matrix = numpy.asarray([embeddings.embed_query(text) for text in queries],
                               dtype=numpy.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self._columns.dimension:
            raise ValueError(f"query embeddings have shape {matrix.shape}, but this stream's "
                             f"memories have {self._columns.dimension} dimensions")
        return _unit_rows(matrix)

    # -- helpers -----------------------------------------------------------------------

    @property
    def embeddings(self) -> CachedQueryEmbeddings:
        """The embedding model (loaded on first use), its query vectors cached."""
        if self._embeddings is None:
            given = self._given_embeddings
            if given is None:
                self._embeddings = default_embeddings()
            elif isinstance(given, CachedQueryEmbeddings):
                self._embeddings = given
            else:
                self._embeddings = CachedQueryEmbeddings(given)
        return self._embeddings

    def _rows(self, candidates: Sequence[int] | None,
              kinds: Sequence[str] | str | None) -> numpy.ndarray | None:
        """Sorted rows selected by ``candidates`` and ``kinds``; None for all of them."""
        rows = None
        if candidates is not None:
            wanted = numpy.fromiter((int(i) for i in candidates), dtype=numpy.int64)
            unknown = wanted[(wanted < 0) | (wanted >= len(self))]
            if unknown.size:
                raise ValueError(f"candidates name memories that do not exist: "
                                 f"{sorted(set(unknown.tolist()))}")
            rows = numpy.unique(wanted)
        if kinds is not None:
            names = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            codes = [self._columns.kind_codes[name] for name in names
                     if name in self._columns.kind_codes]
            of_kind = numpy.isin(self._columns.kind[:len(self)], codes)
            rows = numpy.flatnonzero(of_kind) if rows is None else rows[of_kind[rows]]
        return rows

    def _depths(self, first: int, cited: list[tuple[int, ...]],
                explicit: list[int | None]) -> list[int]:
        """Depth per new memory; evidence may cite earlier memories of the same batch."""
        levels: list[int] = []
        for offset, (ids, depth) in enumerate(zip(cited, explicit)):
            unknown = sorted({i for i in ids if not 0 <= i < first + offset})
            if unknown:
                raise UnknownEvidence(unknown)
            if depth is not None:
                if not isinstance(depth, numbers.Integral) or depth < 0:
                    raise ValueError(f"depth is a non-negative integer, not {depth!r}")
                levels.append(int(depth))
                continue
            deepest = [int(self._columns.depth[i]) if i < first else levels[i - first]
                       for i in ids]
            levels.append(1 + max(deepest) if deepest else 0)
        return levels

    def _vectors_for(self, texts: list[str],
                     given: Sequence[Sequence[float]] | numpy.ndarray | None) -> numpy.ndarray:
        """Unit embeddings for ``texts``: given, reused from an equal text, or embedded."""
        if given is not None:
            vectors = numpy.asarray(given, dtype=numpy.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(texts):
                raise ValueError(f"embeddings need one vector per text ({len(texts)}), "
                                 f"got an array of shape {vectors.shape}")
        else:
            known = self._row_by_text
            missing = list(dict.fromkeys(text for text in texts if text not in known))
            embedded = numpy.asarray(self.embeddings.embed_documents(missing) if missing
                                     else [], dtype=numpy.float32)
            if missing and (embedded.ndim != 2 or embedded.shape[0] != len(missing)):
                raise ValueError(f"the embedding model gave an array of shape "
                                 f"{embedded.shape} for {len(missing)} texts")
            width = self._columns.dimension or embedded.shape[-1]
            if missing and embedded.shape[1] != width:
                raise ValueError(f"the embedding model gives {embedded.shape[1]} dimensions, "
                                 f"but this stream's memories have {width}")
            position = {text: index for index, text in enumerate(missing)}
            vectors = numpy.empty((len(texts), width), dtype=numpy.float32)
            for index, text in enumerate(texts):
                row = known.get(text)
                vectors[index] = embedded[position[text]] if row is None \
                    else self._columns.vectors[row]
        if self._columns.dimension not in (None, vectors.shape[1]):
            raise ValueError(f"embeddings have {vectors.shape[1]} dimensions, but this "
                             f"stream's memories have {self._columns.dimension}")
        if not numpy.isfinite(vectors).all():
            raise ValueError("embeddings must be finite (a NaN or infinity was given)")
        return _unit_rows(vectors)

    def _memory(self, row: int) -> Memory:
        return Memory(**self._fields(row))

    def _retrieved(self, row: int, score: float, recency_part: float, importance_part: float,
                   relevance_part: float, cosine: float) -> RetrievedMemory:
        return RetrievedMemory(**self._fields(row), score=score, recency=recency_part,
                               importance_score=importance_part, relevance=relevance_part,
                               cosine=cosine)

    def _fields(self, row: int) -> dict:
        columns = self._columns
        return {"id": row, "text": columns.texts[row],
                "kind": columns.kind_names[columns.kind[row]],
                "importance": float(columns.importance[row]),
                "created": self._times.moment(columns.created[row]),
                "last_accessed": self._times.moment(columns.accessed[row]),
                "depth": int(columns.depth[row]),
                "evidence": tuple(columns.cited(row).tolist())}

    def _load(self, stored: list[StoredRow]) -> None:
        if not stored:
            return
        vectors = numpy.stack([row.embedding for row in stored])
        self._columns.append([row.text for row in stored], vectors,
                             [row.importance for row in stored],
                             [self._times.micros(row.created) for row in stored],
                             [self._times.micros(row.last_accessed) for row in stored],
                             [row.kind for row in stored], [row.depth for row in stored],
                             [row.evidence for row in stored])
        for row in stored:
            self._row_by_text.setdefault(row.text, row.id)

    def hold_writes(self) -> HeldWrites | None:
        """Hold this stream's database writes back, in the order they are made, until
        ``write()`` on what is returned; ``release()`` writes directly again and drops what
        is still held. The stream itself changes at once (its memories read back as
        usual). For callers that add memories on several threads but must write rows in a
        fixed order on one (a concurrent world step). None for a stream without a database."""
        if self._table is None:
            return None
        return HeldWrites(self, self._table)  # held twice: the inner writes to the outer

    def close(self) -> None:
        """Close the SQLite file this stream opened (a shared connection stays open)."""
        if self._table is not None:
            self._table.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"MemoryStream(agent={self.agent!r}, memories={len(self)}, "
                f"preset={self.preset!r}, weights={self.weights}, decay={self.decay})")


class HeldWrites:
    """A stream's database writes held back (``MemoryStream.hold_writes``)."""

    def __init__(self, stream: MemoryStream, table: StreamTable | HeldWrites) -> None:
        self._stream, self._table = stream, table
        self._held: list[tuple[str, tuple]] = []
        stream._table = self  # the stream writes only through this attribute

    def insert(self, rows: Sequence[StoredRow]) -> None:
        self._held.append(("insert", (list(rows),)))

    def touch(self, ids: Sequence[int], accessed: datetime) -> None:
        self._held.append(("touch", ([int(i) for i in ids], accessed)))

    def close(self) -> None:
        self._table.close()

    def write(self) -> None:
        """Write what is held, in the order it was made."""
        for method, args in self._held:
            getattr(self._table, method)(*args)
        self._held.clear()

    def release(self) -> None:
        """The stream writes directly again; whatever is still held is dropped."""
        self._stream._table = self._table
        self._held.clear()


def _per_text(name: str, value: object, count: int, single: type | tuple[type, ...]) -> list:
    """``value`` repeated ``count`` times when it is one value, else checked to have ``count``."""
    if isinstance(value, single):
        return [value] * count
    values = list(value)  # type: ignore[call-overload]
    if len(values) != count:
        raise ValueError(f"{name} needs one value per text ({count}), got {len(values)}")
    return values


def _unit_rows(matrix: numpy.ndarray) -> numpy.ndarray:
    """Rows scaled to length 1, so a dot product is a cosine (a zero row stays zero)."""
    norms = numpy.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / numpy.where(norms == 0, 1, norms)
