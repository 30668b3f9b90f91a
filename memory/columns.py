"""A memory stream's rows as growable numpy columns, so retrieval never loops over memories.

Retrieval scores every memory on every call, so each attribute is one array: the
embeddings a float32 matrix, times int64 microseconds, kinds small integer codes,
evidence one flat id array with per-row end offsets. Capacity doubles when full, so n
appends copy O(n) values in all instead of re-stacking the matrix on every add.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy

INITIAL_CAPACITY = 64


def _grown(array: numpy.ndarray, used: int, capacity: int) -> numpy.ndarray:
    bigger = numpy.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[:used] = array[:used]
    return bigger


class MemoryColumns:
    """Append-only columns; the first ``size`` entries of each array are the memories."""

    def __init__(self) -> None:
        self.size = 0
        self.vectors = numpy.empty((0, 0), dtype=numpy.float32)  # unit rows (or zero)
        self.importance = numpy.empty(0, dtype=numpy.float64)
        self.created = numpy.empty(0, dtype=numpy.int64)  # microseconds since 1970
        self.accessed = numpy.empty(0, dtype=numpy.int64)
        self.kind = numpy.empty(0, dtype=numpy.int32)  # index into kind_names
        self.depth = numpy.empty(0, dtype=numpy.int32)
        self.evidence_end = numpy.empty(0, dtype=numpy.int64)  # row i cites evidence[end[i-1]:end[i]]
        self.evidence = numpy.empty(0, dtype=numpy.int64)
        self.texts: list[str] = []
        self.kind_names: list[str] = []
        self.kind_codes: dict[str, int] = {}

    @property
    def dimension(self) -> int | None:
        """The embedding width, or None before the first memory."""
        return self.vectors.shape[1] if self.size else None

    def kind_code(self, kind: str) -> int:
        code = self.kind_codes.get(kind)
        if code is None:
            code = self.kind_codes[kind] = len(self.kind_names)
            self.kind_names.append(kind)
        return code

    def cited(self, row: int) -> numpy.ndarray:
        start = self.evidence_end[row - 1] if row else 0
        return self.evidence[start:self.evidence_end[row]]

    def append(self, texts: Sequence[str], vectors: numpy.ndarray, importance: Sequence[float],
               created: Sequence[int], accessed: Sequence[int], kinds: Sequence[str],
               depths: Sequence[int], evidence: Sequence[Sequence[int]]) -> None:
        """Add rows (``vectors`` already normalised and of the stream's width)."""
        count = len(texts)
        end = self.size + count
        if end > self.importance.shape[0]:
            self._reserve(end, vectors.shape[1])
        rows = slice(self.size, end)
        self.vectors[rows] = vectors
        self.importance[rows] = importance
        self.created[rows] = created
        self.accessed[rows] = accessed
        self.kind[rows] = [self.kind_code(kind) for kind in kinds]
        self.depth[rows] = depths
        cited = numpy.fromiter((i for ids in evidence for i in ids), dtype=numpy.int64)
        used = int(self.evidence_end[self.size - 1]) if self.size else 0
        if used + cited.size > self.evidence.size:
            capacity = max(INITIAL_CAPACITY, self.evidence.size)
            while capacity < used + cited.size:
                capacity *= 2
            self.evidence = _grown(self.evidence, used, capacity)
        self.evidence[used:used + cited.size] = cited
        self.evidence_end[rows] = used + numpy.cumsum([len(ids) for ids in evidence])
        self.texts.extend(texts)
        self.size = end

    def _reserve(self, rows: int, dimension: int) -> None:
        capacity = max(INITIAL_CAPACITY, self.importance.shape[0])
        while capacity < rows:
            capacity *= 2
        if self.size == 0:
            self.vectors = numpy.empty((capacity, dimension), dtype=numpy.float32)
        else:
            self.vectors = _grown(self.vectors, self.size, capacity)
        for name in ("importance", "created", "accessed", "kind", "depth", "evidence_end"):
            setattr(self, name, _grown(getattr(self, name), self.size, capacity))
