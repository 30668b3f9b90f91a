"""The memory stream's retrieval arithmetic, storage and embeddings (Park et al. 2023).

Arithmetic is pinned with hand-made embeddings (vectors chosen in the test); the bundled
MiniLM is used only where meaning matters (a paraphrase beats an unrelated sentence).
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from datetime import datetime, timedelta

import numpy
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

import stepwise.memory.embeddings as embeddings_module
from stepwise.memory.columns import MemoryColumns
from stepwise.memory.embeddings import (
    BUNDLED_SHA256,
    CachedQueryEmbeddings,
    EmbeddingModelError,
    default_embeddings,
    local_embeddings,
    verify_model_files,
)
from stepwise.memory.retrieval import EQUAL_COLUMN_VALUE, top_k
from stepwise.memory.stream import (
    PRESETS,
    Memory,
    MemoryStream,
    RetrievedMemory,
    UnknownEvidence,
)

T0 = datetime(2023, 2, 13, 8, 0)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class TableEmbeddings(Embeddings):
    """Texts map to the vectors given; anything else to a fixed pseudo-random vector."""

    def __init__(self, table: dict[str, list[float]] | None = None, size: int = 4) -> None:
        self.table = table or {}
        self.fallback = DeterministicFakeEmbedding(size=size)
        self.document_calls: list[list[str]] = []
        self.query_calls: list[str] = []

    def _vector(self, text: str) -> list[float]:
        return list(self.table[text]) if text in self.table else self.fallback.embed_query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.document_calls.append(list(texts))
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        self.query_calls.append(text)
        return self._vector(text)


def axes(**named: int) -> TableEmbeddings:
    """Each name embedded as the unit vector along the given axis (of 4)."""
    return TableEmbeddings({name: [float(i == axis) for i in range(4)]
                            for name, axis in named.items()})


def stream_of(embeddings: Embeddings | None = None, **options) -> MemoryStream:
    return MemoryStream(embeddings or TableEmbeddings(), clock=lambda: T0, **options)


# -- ties and degenerate columns -----------------------------------------------------------


def test_equal_scores_go_to_the_more_recently_accessed_memory():
    stream = stream_of(axes(same=0, query=0), weights=(0, 1, 1))  # recency weighs nothing
    older, newer = stream.add_many(["same", "same"], importances=5, created=[hours(0), hours(1)])
    stream.retrieve("query", k=1, now=hours(5), candidates=[older])  # touches `older`
    first, second = stream.retrieve("query", k=2, now=hours(6))
    assert (first.id, second.id) == (older, newer) and first.score == second.score


def test_equal_scores_and_access_go_to_the_newer_memory():
    stream = stream_of(axes(same=0, query=0), weights=(0, 1, 1))
    ids = stream.add_many(["same"] * 3, importances=5, created=[hours(2), hours(0), hours(1)])
    assert [m.id for m in stream.retrieve("query", k=3, now=hours(3))] == [ids[0], ids[2], ids[1]]
    # all equal in every key but the id: the later insertion wins, at the cut too
    flat = stream_of(axes(same=0, query=0))
    flat.add_many(["same"] * 50, importances=5)
    assert [m.id for m in flat.retrieve("query", k=3)] == [49, 48, 47]


def test_all_equal_columns_normalise_to_one_half_without_nan():
    stream = stream_of(axes(same=0, query=1))
    stream.add_many(["same"] * 4, importances=7)
    results = stream.retrieve("query", k=4)
    for memory in results:
        assert (memory.recency, memory.importance_score, memory.relevance) == \
            (EQUAL_COLUMN_VALUE,) * 3
        assert memory.score == 1.5 and not math.isnan(memory.score)
    single = stream_of(axes(alone=0, query=0))
    single.add("alone", importance=3)
    (only,) = single.retrieve("query")
    assert only.score == 1.5 and only.cosine == pytest.approx(1.0)


def test_top_k_breaks_ties_at_the_cut_like_a_full_sort():
    rng = numpy.random.default_rng(7)
    for _ in range(50):
        size = int(rng.integers(1, 40))
        scores = rng.integers(0, 4, size).astype(float)  # many ties
        accessed, created = rng.integers(0, 3, size), rng.integers(0, 3, size)
        ids = numpy.arange(size)
        k = int(rng.integers(1, size + 2))
        expected = sorted(ids, key=lambda i: (scores[i], accessed[i], created[i], i),
                          reverse=True)[:k]
        assert top_k(scores, k, (accessed, created, ids)).tolist() == expected


# -- weights and presets -------------------------------------------------------------------


def two_memory_stream(preset: str) -> MemoryStream:
    """A: important, fresh, unrelated. B: trivial, 10 hours older, exactly on topic."""
    stream = stream_of(axes(A=0, B=1, query=1), preset=preset)
    stream.add("B", importance=1, created=hours(0))
    stream.add("A", importance=10, created=hours(10))
    return stream


def test_presets_rank_as_worked_out_by_hand():
    # paper (1, 1, 1): A = 1 + 1 + 0 = 2, B = 0 + 0 + 1 = 1
    first, second = two_memory_stream("paper").retrieve("query", k=2, now=hours(10))
    assert (first.text, first.score, second.text, second.score) == ("A", 2.0, "B", 1.0)
    # reference code (0.5, 2, 3): A = 0.5 + 2 + 0 = 2.5, B = 0 + 0 + 3 = 3
    first, second = two_memory_stream("reference-code").retrieve("query", k=2, now=hours(10))
    assert (first.text, first.score, second.text, second.score) == ("B", 3.0, "A", 2.5)
    assert PRESETS["reference-code"].weights == (0.5, 2.0, 3.0)
    assert PRESETS["paper"].weights == (1.0, 1.0, 1.0)
    assert PRESETS["paper"].decay == PRESETS["reference-code"].decay == 0.995


def test_weights_and_decay_override_the_preset_and_are_checked():
    stream = stream_of(preset="reference-code", weights=(1, 0, 0), decay=0.9)
    assert (stream.weights, stream.decay) == ((1.0, 0.0, 0.0), 0.9)
    for bad in ({"weights": (1, -1, 1)}, {"weights": (1, 1)}, {"decay": 0}, {"decay": 1.5},
                {"preset": "nope"}):
        with pytest.raises(ValueError):
            stream_of(**bad)


# -- top-k against brute force -------------------------------------------------------------


def random_stream(seed: int, size: int = 400, dimension: int = 16) -> MemoryStream:
    rng = numpy.random.default_rng(seed)
    stream = stream_of(TableEmbeddings({f"q{i}": rng.standard_normal(dimension).tolist()
                                        for i in range(3)}, size=dimension))
    stream.add_many([f"m{i}" for i in range(size)],
                    importances=rng.integers(1, 11, size).tolist(),
                    created=[hours(float(h)) for h in rng.uniform(0, 100, size)],
                    kind=rng.choice(["observation", "reflection"], size).tolist(),
                    embeddings=rng.standard_normal((size, dimension)))
    return stream


def brute_force(stream: MemoryStream, query_vector: list[float], k: int, now: datetime,
                ids: list[int] | None = None) -> list[tuple[int, float]]:
    """The paper's formula, one memory at a time, in float64."""
    memories = [stream.get(i) for i in (ids if ids is not None else range(len(stream)))]
    query = numpy.asarray(query_vector) / numpy.linalg.norm(query_vector)
    vectors = stream._columns.vectors  # the stored unit vectors

    def normalised(values: list[float]) -> list[float]:
        low, high = min(values), max(values)
        return [0.5 if high == low else (v - low) / (high - low) for v in values]

    recency = normalised([0.995 ** ((now - m.last_accessed) / timedelta(hours=1))
                          for m in memories])
    importance = normalised([m.importance for m in memories])
    relevance = normalised([float(vectors[m.id].astype(float) @ query) for m in memories])
    scored = [(r + i + v, m.last_accessed, m.created, m.id)
              for r, i, v, m in zip(recency, importance, relevance, memories)]
    return [(memory_id, score) for score, _, _, memory_id in sorted(scored, reverse=True)[:k]]


@pytest.mark.parametrize("k", [1, 10, 400, 1000])
def test_top_k_matches_a_brute_force_sort(k):
    stream = random_stream(seed=k)
    now = hours(120)
    expected = brute_force(stream, stream.embeddings.inner.table["q0"], k, now)
    results = stream.retrieve("q0", k=k, now=now)
    assert [m.id for m in results] == [memory_id for memory_id, _ in expected]
    assert [m.score for m in results] == pytest.approx([s for _, s in expected], abs=1e-6)
    assert all(0 <= part <= 1 for m in results
               for part in (m.recency, m.importance_score, m.relevance))


def test_several_queries_equal_one_query_at_a_time():
    together = random_stream(seed=3).retrieve(["q0", "q1", "q2"], k=7, now=hours(120))
    for query, batch in zip(["q0", "q1", "q2"], together):
        alone = random_stream(seed=3).retrieve(query, k=7, now=hours(120))
        assert [m.id for m in batch] == [m.id for m in alone]
        assert [m.score for m in batch] == pytest.approx([m.score for m in alone], abs=1e-6)


def test_candidates_and_kinds_restrict_ranking_and_normalisation():
    stream = random_stream(seed=5)
    now = hours(120)
    candidates = [3, 50, 7, 199, 3]
    expected = brute_force(stream, stream.embeddings.inner.table["q1"], 10, now,
                           ids=sorted(set(candidates)))
    results = stream.retrieve("q1", k=10, now=now, candidates=candidates)
    assert [m.id for m in results] == [memory_id for memory_id, _ in expected]
    assert max(m.importance_score for m in results) == 1.0  # the max of the four, not of all
    reflections = stream.retrieve("q1", k=400, now=now, kinds=["reflection"])
    assert {m.kind for m in reflections} == {"reflection"}
    assert len(reflections) == len(stream.memories(kinds="reflection"))
    assert stream.retrieve("q1", kinds=["dream"]) == []
    with pytest.raises(ValueError, match="400"):
        stream.retrieve("q1", candidates=[1, 400])


def test_empty_stream_and_bad_k():
    stream = stream_of()
    assert stream.retrieve("anything") == []
    assert stream.retrieve(["a", "b"]) == [[], []]
    for k in (0, -1):
        with pytest.raises(ValueError, match="k"):
            stream.retrieve("anything", k=k)


# -- access --------------------------------------------------------------------------------


def test_retrieval_moves_last_access_and_the_next_recency_follows_it():
    stream = stream_of(axes(a=0, b=1, c=2, q_a=0, q_b=1, q_c=2), weights=(1, 0, 0))
    a, b, c = stream.add_many(["a", "b", "c"], importances=5, created=hours(0))
    stream.retrieve("q_b", k=1, now=hours(10), candidates=[b])
    stream.retrieve("q_c", k=1, now=hours(20), candidates=[c])
    assert [stream.get(i).last_accessed for i in (a, b, c)] == [hours(0), hours(10), hours(20)]
    ranked = stream.retrieve("q_a", k=3, now=hours(30))
    assert [m.id for m in ranked] == [c, b, a]
    middle = (0.995 ** 20 - 0.995 ** 30) / (0.995 ** 10 - 0.995 ** 30)
    assert [m.recency for m in ranked] == pytest.approx([1.0, middle, 0.0])
    assert all(stream.get(i).last_accessed == hours(30) for i in (a, b, c))
    stream.retrieve("q_a", k=3, now=hours(25))  # an earlier clock never moves access back
    assert stream.get(a).last_accessed == hours(30)


# -- adding --------------------------------------------------------------------------------


def test_importance_must_be_between_one_and_ten():
    stream = stream_of()
    assert stream.get(stream.add("low", importance=1)).importance == 1.0
    assert stream.get(stream.add("high", importance=numpy.float32(10))).importance == 10.0
    for bad in (0, 0.99, 10.5, 11, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="1 to 10"):
            stream.add("bad", importance=bad)
    with pytest.raises(ValueError):
        stream.add_many(["fine", "bad"], importances=[5, 12])
    assert len(stream) == 2  # nothing of a refused batch is stored


def test_unknown_evidence_is_named():
    stream = stream_of()
    stream.add("seen", importance=2)
    with pytest.raises(UnknownEvidence) as refused:
        stream.add("insight", importance=6, kind="reflection", evidence=[0, 9, 7, 9])
    assert isinstance(refused.value, ValueError) and refused.value.ids == (7, 9)
    assert "7" in str(refused.value) and "9" in str(refused.value)
    assert len(stream) == 1


def test_depth_is_one_above_the_deepest_evidence():
    stream = stream_of()
    seen = stream.add_many(["saw a", "saw b"], importances=[2, 3])
    insight = stream.add("a and b", importance=6, kind="reflection", evidence=seen)
    deeper = stream.add("about a and b", importance=7, kind="reflection",
                        evidence=[seen[0], insight])
    pinned = stream.add("planned", importance=4, kind="plan", evidence=[seen[0]], depth=5)
    assert [stream.get(i).depth for i in (*seen, insight, deeper, pinned)] == [0, 0, 1, 2, 5]
    assert stream.get(deeper).evidence == (seen[0], insight)
    batch = stream.add_many(["x", "y from x"], importances=3, evidence=[(), [len(stream)]])
    assert [stream.get(i).depth for i in batch] == [0, 1]


def test_add_many_embeds_once_and_reuses_repeated_texts():
    embeddings = TableEmbeddings()
    stream = stream_of(embeddings)
    stream.add_many(["idle", "idle", "walking"], importances=1)
    stream.add("idle", importance=1)
    assert embeddings.document_calls == [["idle", "walking"]]
    stream.retrieve("what is idle", now=hours(1))
    stream.retrieve(["what is idle", "walking"], now=hours(2))
    assert embeddings.query_calls == ["what is idle", "walking"]  # the LRU served the rest


def test_reading_the_stream():
    stream = stream_of()
    stream.add_many(["a", "b", "c", "d"], importances=[1, 2, 3, 4],
                    created=[hours(3), hours(1), hours(3), hours(2)],
                    kind=["observation", "chat", "observation", "plan"])
    assert [m.text for m in stream.memories()] == ["a", "b", "c", "d"]
    assert [m.text for m in stream.memories(kinds=["chat", "plan"])] == ["b", "d"]
    assert [m.text for m in stream.recent(3)] == ["c", "a", "d"]
    assert [m.text for m in stream.recent(5, kinds="observation")] == ["c", "a"]
    assert stream.importance_since(None) == 10 and stream.importance_since(1) == 7
    assert stream.importance_since(3) == 0
    assert 3 in stream and 4 not in stream and -1 not in stream and len(stream) == 4
    assert isinstance(stream.get(0), Memory) and not isinstance(stream.get(0), RetrievedMemory)
    with pytest.raises(KeyError):
        stream.get(4)


def test_columns_grow_by_doubling():
    columns = MemoryColumns()
    stream = stream_of()
    stream._columns = columns
    capacities = set()
    for i in range(200):
        stream.add(f"memory {i}", importance=1)
        capacities.add(columns.vectors.shape[0])
    assert capacities == {64, 128, 256}


def test_naive_and_aware_times_do_not_mix():
    stream = stream_of()
    stream.add("naive", importance=1, created=T0)
    with pytest.raises(ValueError, match="naive"):
        stream.add("aware", importance=1, created=T0.astimezone())


# -- SQLite --------------------------------------------------------------------------------


def test_two_agents_in_one_file_survive_reopening(tmp_path):
    path = tmp_path / "town.sqlite"
    embeddings = axes(party=0, cake=1, q=0)
    isabella = MemoryStream(embeddings, db=path, agent="Isabella", clock=lambda: T0)
    klaus = MemoryStream(embeddings, db=path, agent="Klaus", clock=lambda: T0)
    seen = isabella.add("party", importance=8, created=hours(1))
    isabella.add("cake", importance=3, kind="reflection", evidence=[seen], created=hours(2))
    klaus.add("cake", importance=2)
    isabella.retrieve("q", k=1, now=hours(5))
    before = isabella.memories()
    isabella.close()
    klaus.close()
    again = MemoryStream(embeddings, db=path, agent="Isabella")
    assert again.memories() == before and again.get(seen).last_accessed == hours(5)
    assert again.get(1).evidence == (seen,) and again.get(1).depth == 1
    assert [m.text for m in MemoryStream(embeddings, db=path, agent="Klaus").memories()] == \
        ["cake"]
    assert MemoryStream(embeddings, db=path, agent="Nobody").memories() == []
    assert again.retrieve("q", k=2, now=hours(6))[0].id == seen


def test_a_shared_connection_keeps_its_owner_tables_and_transactions(tmp_path):
    path = tmp_path / "world.sqlite"
    world = sqlite3.connect(path)
    world.execute("CREATE TABLE tiles (x INTEGER, y INTEGER, what TEXT)")
    world.commit()
    stream = MemoryStream(axes(bed=0), db=world, agent="Maria", clock=lambda: T0)
    stream.add("bed", importance=1, embedding=[1, 0, 0, 0])
    world.execute("INSERT INTO tiles VALUES (1, 2, 'bed')")  # the owner's open transaction
    stream.add("bed again", importance=2, embedding=[0, 1, 0, 0])  # joins it ...
    world.rollback()  # ... and goes with it
    stream.close()  # a shared connection stays open
    assert world.execute("SELECT count(*) FROM tiles").fetchone() == (0,)
    reopened = MemoryStream(axes(bed=0), db=sqlite3.connect(path), agent="Maria")
    assert [m.text for m in reopened.memories()] == ["bed"]


def test_held_writes_wait_for_write_in_their_order_and_release_drops_the_rest(tmp_path):
    path = tmp_path / "town.sqlite"
    embeddings = axes(party=0, cake=1, q=0)
    stream = MemoryStream(embeddings, db=path, agent="Isabella", clock=lambda: T0)

    def stored() -> list[tuple[str, str]]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT text, last_accessed FROM memory_stream ORDER BY id").fetchall()

    held = stream.hold_writes()
    first = stream.add("party", importance=8, created=hours(1))
    stream.retrieve("q", k=1, now=hours(3))  # a touch, held after the insert
    assert stream.get(first).last_accessed == hours(3)  # the stream changes at once
    assert stored() == []
    held.write()
    assert [text for text, _ in stored()] == ["party"] and hours(3).isoformat() in stored()[0][1]
    stream.add("cake", importance=2)
    held.release()  # dropped: not written
    stream.add("party again", importance=1)  # written directly again
    assert [text for text, _ in stored()] == ["party", "party again"]
    assert MemoryStream(embeddings, agent="x").hold_writes() is None  # no database


# -- embeddings ----------------------------------------------------------------------------


def test_default_embeddings_rank_a_paraphrase_above_an_unrelated_sentence():
    model = default_embeddings()
    assert model is default_embeddings()  # loaded once per process
    assert len(model.embed_query("hello")) == 384
    stream = MemoryStream(clock=lambda: T0)  # the default model, loaded lazily
    stream.add_many(["Isabella is planning a Valentine's Day party at Hobbs Cafe",
                     "The stock market fell sharply on Tuesday"], importances=5)
    paraphrase, unrelated = sorted(
        stream.retrieve("Isabella is organising a party for Valentine's Day", k=2),
        key=lambda m: m.id)
    assert paraphrase.cosine > unrelated.cosine + 0.3
    assert paraphrase.relevance == 1.0 and unrelated.relevance == 0.0


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    bundled = embeddings_module.bundled_model_dir()
    verify_model_files(bundled, BUNDLED_SHA256)  # the installed copy is the upstream one
    copy = tmp_path / "model"
    shutil.copytree(bundled, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    (copy / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(EmbeddingModelError, match="model.safetensors.*refusing"):
        verify_model_files(copy, BUNDLED_SHA256)
    with pytest.raises(EmbeddingModelError, match="refusing"):
        local_embeddings(copy, sha256=BUNDLED_SHA256)
    monkeypatch.setattr(embeddings_module, "bundled_model_dir", lambda: copy)
    monkeypatch.setattr(embeddings_module, "_shared_default", {})
    with pytest.raises(EmbeddingModelError, match="refusing"):
        default_embeddings()


def test_missing_model_package_and_directory_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings_module, "BUNDLED_PACKAGE", "no_such_embedding_package")
    with pytest.raises(EmbeddingModelError, match=r"stepwise\[embed\]") as missing:
        embeddings_module.bundled_model_dir()
    assert "\n" not in str(missing.value)
    with pytest.raises(EmbeddingModelError, match="no embedding model directory"):
        local_embeddings(tmp_path / "absent")
    with pytest.raises(EmbeddingModelError, match="not a sentence-transformers"):
        local_embeddings(tmp_path)


def test_query_cache_is_a_bounded_lru():
    inner = TableEmbeddings()
    cached = CachedQueryEmbeddings(inner, maxsize=2)
    for text in ["a", "b", "a", "c", "b", "a"]:
        assert cached.embed_query(text) == inner.fallback.embed_query(text)
    assert inner.query_calls == ["a", "b", "c", "b", "a"]  # "b" fell out when "c" came in
    assert (cached.hits, cached.misses) == (1, 5)


def test_the_benchmark_loop_baseline_agrees_with_the_stream():
    from benchmarks import memory_retrieval as benchmark

    stream, records, query_vectors, _ = benchmark.build(300, seed=1)
    ours = stream.retrieve(list(benchmark.QUERIES), k=10, now=benchmark.NOW)
    theirs = benchmark.loop_retrieve(records, query_vectors, 10, benchmark.hours(benchmark.NOW),
                                     stream.weights, stream.decay)
    for mine, other in zip(ours, theirs):
        assert [m.id for m in mine] == [memory_id for memory_id, _ in other]
        assert [m.score for m in mine] == pytest.approx([score for _, score in other], abs=1e-5)


def test_an_embedding_model_of_another_width_is_refused():
    stream = stream_of(TableEmbeddings(size=4))
    stream.add("four", importance=1)
    stream.embeddings.inner.fallback = DeterministicFakeEmbedding(size=8)
    with pytest.raises(ValueError, match="8 dimensions"):
        stream.add("eight", importance=1)
    with pytest.raises(ValueError, match="4 dimensions"):
        stream.retrieve("eight wide")
    assert len(stream) == 1
