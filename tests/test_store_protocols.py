"""The local backend implements the store protocols that search and build are written against,
the vector index's document filter works for each kind, and Index.trace is the supported
window into a query."""

from __future__ import annotations

import numpy as np
import pytest

import qa
from qa.build.artifacts import LocalGenerationWriter
from qa.store import protocols
from qa.store.folder import IndexDirectory
from qa.store.local import LocalGenerations
from qa.store.vectors.choice import IndexPolicy
from qa.store.vectors.factory import create_vector_index, load_vector_index


def test_an_opened_local_generation_provides_every_protocol(seed_index):
    generations = LocalGenerations(seed_index)
    assert isinstance(generations, protocols.Generations)
    generation = generations.open()
    try:
        assert isinstance(generation, protocols.Generation)
        assert isinstance(generation.vectors, protocols.VectorIndex)
        assert isinstance(generation.chunks, protocols.ChunkStore)
        assert isinstance(generation.rows, protocols.RankingRowStore)
        assert isinstance(generation.vocabulary, protocols.VocabularyStore)
        assert generations.current_generation() == generation.name
        # one row numbering across the parts: row i of the vectors is row i of the chunks and rows
        assert generation.vectors.size == generation.chunks.count() == generation.rows.rows == generation.manifest.chunks
    finally:
        generation.lease.release()


def test_the_build_writes_through_the_writer_protocol(seed_index, tmp_path):
    directory = IndexDirectory(tmp_path / "index")
    writer = LocalGenerationWriter(directory, None, 8)
    try:
        assert isinstance(writer, protocols.GenerationWriter)
        assert writer.workspace.is_dir()
    finally:
        writer.abort()
    assert not writer.workspace.exists()


def test_the_search_package_reads_the_store_only_through_its_protocols():
    from test_architecture import QA, imports_of

    for path in sorted((QA / "search").glob("*.py")):
        store = {m for m in imports_of(path) if m.startswith("qa.store")}
        assert store <= {"qa.store.protocols"}, (path.name, store)


def _unit(rows: int, dimension: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("requested", ["flat", "ivf-sq8"])
def test_a_search_among_some_rows_returns_their_nearest_only(tmp_path, requested):
    vectors = _unit(400, 16, 0)
    index = create_vector_index(vectors, 16, requested=requested, policy=IndexPolicy(exact_below=100))
    index.save(tmp_path)
    index = load_vector_index(tmp_path, index.describe())
    assert index.kind == requested
    queries = _unit(3, 16, 1)
    among = np.arange(0, 400, 7, dtype=np.int64)
    scores, rows = index.search(queries, 5, among=among)
    assert set(rows.ravel().tolist()) <= set(among.tolist())
    exact = queries @ vectors[among].T
    for i in range(len(queries)):
        best = among[np.argsort(-exact[i])[:5]]
        if requested == "flat":
            assert rows[i].tolist() == best.tolist()
        else:  # approximate candidates, exactly re-scored: the best of them is the true best here
            assert rows[i][0] == best[0]
        assert np.allclose(np.sort(scores[i])[::-1], scores[i])
    few = np.array([3, 11], dtype=np.int64)
    _, rows = index.search(queries[:1], 5, among=few)
    assert sorted(rows[0].tolist()) == [3, 11]


def test_trace_shows_the_candidates_stages_and_sentences_of_a_retrieval(seed_index):
    index = qa.load(seed_index)
    question = "Who supplied drones to Russia?"
    trace = index.trace(question, k=2)
    assert [h.chunk_id for h in trace.hits] == [h.chunk_id for h in index.retrieve(question, k=2)]
    assert {"encode", "translations", "vector search", "re-ranking", "passages", "total"} <= set(trace.timings)
    assert trace.timings["total"] >= trace.timings["re-ranking"] >= 0
    rows = [row for row, _ in trace.candidates]
    assert len(set(rows)) == len(rows) and len(rows) >= len(trace.hits)
    dense = index.trace(question, k=1, mode="dense")
    assert [h.chunk_id for h in dense.hits] == [h.chunk_id for h in index.retrieve(question, k=1, mode="dense")]
    hit, sentences = dense.hits[0], dense.sentences[0]
    assert sentences and all(hit.start <= a < b <= hit.end for a, b, _ in sentences)
    best = max(sentences, key=lambda s: s[2])
    assert best[2] == pytest.approx(float(index.embedder.encode_queries([question])[0]
                                          @ index.embedder.encode_queries([hit.text[best[0] - hit.start:best[1] - hit.start]])[0]),
                                    abs=0.35)  # an in-context sentence vector is near the sentence's own
