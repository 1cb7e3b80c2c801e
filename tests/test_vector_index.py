"""Choosing the index type by size, the approximate index against exact search, overrides.

Thresholds are injected (IndexPolicy) so a few hundred vectors cross them; nothing is timed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import qa
import qa.store.vectors.choice
from qa.encode.models import load_embedder
from qa.errors import IndexCorruptError
from qa.store.vectors.float16_rows import Float16Rows, write_rows
from qa.store.vectors.choice import FLAT, IVF_SQ8, IndexPolicy, choose_spec
from qa.store.folder import IndexDirectory
from qa.store.vectors.factory import create_vector_index, load_vector_index
from qa.store.vectors.base import HALF_ROWS_FILE

from conftest import FIXTURES, SEED_ARTICLE

SMALL = IndexPolicy(exact_below=200, exact_again_below=150)


@pytest.fixture(scope="module")
def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """About 600 real passages (overlapping windows of three documents) and 60 real queries."""
    texts = [p.read_text(encoding="utf-8") for p in (SEED_ARTICLE, FIXTURES / "schwebebahn.txt",
                                                      FIXTURES / "lisbon-trams.md")]
    windows = [text[i:i + 160] for text in texts for i in range(0, max(1, len(text) - 80), 12)]
    sentences = [s.strip() for text in texts for s in text.replace("\n", " ").split(". ") if len(s.strip()) > 20]
    encoder = load_embedder()
    return encoder.encode_passages(windows), encoder.encode_queries(sentences[:60])


def clustered(n: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    """Hand-made vectors around 8 centres, normalised (iid noise would have no neighbours)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dimension))
    vectors = centres[rng.integers(0, 8, n)] + 0.3 * rng.normal(size=(n, dimension))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_the_choice_switches_to_approximate_past_the_threshold_and_back_with_hysteresis():
    assert choose_spec(199, policy=SMALL).kind == FLAT
    assert choose_spec(200, policy=SMALL).kind == IVF_SQ8
    assert choose_spec(160, previous_kind=IVF_SQ8, policy=SMALL).kind == IVF_SQ8  # no flip-flop near the line
    assert choose_spec(149, previous_kind=IVF_SQ8, policy=SMALL).kind == FLAT
    assert choose_spec(160, previous_kind=FLAT, policy=SMALL).kind == FLAT


def test_default_bands_follow_the_measured_settings():
    assert choose_spec(49_999).kind == FLAT
    assert choose_spec(100_000) == qa.store.vectors.choice.IndexSpec(IVF_SQ8, nlist=1024, nprobe=16, rerank=50)
    assert choose_spec(1_000_000) == qa.store.vectors.choice.IndexSpec(IVF_SQ8, nlist=2048, nprobe=32, rerank=50)


def test_an_explicit_choice_wins_over_size():
    assert choose_spec(1_000_000, "flat").kind == FLAT
    spec = choose_spec(300, "ivf-sq8")
    assert spec.kind == IVF_SQ8 and 1 <= spec.nprobe <= spec.nlist <= 300 // 39
    with pytest.raises(ValueError, match="auto, flat, ivf-sq8"):
        choose_spec(10, "hnsw")


def test_the_store_builds_the_type_the_policy_picks():
    assert create_vector_index(clustered(199), 16, policy=SMALL).kind == FLAT
    store = create_vector_index(clustered(400), 16, policy=SMALL)
    assert store.kind == IVF_SQ8 and store.describe()["nlist"] == 400 // 39


def test_approximate_search_finds_the_exact_top_hit_on_real_text(real_vectors, tmp_path):
    passages, queries = real_vectors
    exact = create_vector_index(passages, 512)
    approximate = create_vector_index(passages, 512, policy=IndexPolicy(exact_below=100, exact_again_below=80))
    assert (exact.kind, approximate.kind) == (FLAT, IVF_SQ8)
    approximate.save(tmp_path)
    reloaded = load_vector_index(tmp_path, approximate.describe())
    exact_scores, exact_rows = exact.search(queries, 5)
    for store in (approximate, reloaded):
        scores, rows = store.search(queries, 5)
        assert rows[:, 0].tolist() == exact_rows[:, 0].tolist()
        # candidates are re-scored from float16 vectors: exact to float16 precision
        np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], atol=2e-3)


def test_approximate_store_keeps_float16_vectors_and_reuses_its_centroids(tmp_path):
    vectors = clustered(400)
    first = create_vector_index(vectors, 16, policy=SMALL)
    first.save(tmp_path)
    loaded = load_vector_index(tmp_path, first.describe())
    np.testing.assert_allclose(loaded.vectors(np.array([399, 0, 7, 7])), vectors[[399, 0, 7, 7]], atol=1e-3)

    more = vectors[:20] + 0.01  # same topics, same number of lists
    grown = create_vector_index(np.vstack([vectors, more / np.linalg.norm(more, axis=1, keepdims=True)]), 16,
                               previous=loaded, policy=SMALL)
    assert grown.describe()["trained_n"] == 400  # not 4x bigger, lists as balanced: centroids reused
    much_bigger = create_vector_index(clustered(1700, seed=2), 16, previous=loaded, policy=SMALL)
    assert much_bigger.describe()["trained_n"] == 1700  # outgrew its centroids: retrained


def test_requested_type_is_kept_until_changed():
    forced = create_vector_index(clustered(50), 16, requested="ivf-sq8", policy=SMALL)
    assert forced.kind == IVF_SQ8
    assert create_vector_index(clustered(60), 16, previous=forced, policy=SMALL).kind == IVF_SQ8
    assert create_vector_index(clustered(60), 16, requested="auto", previous=forced, policy=SMALL).kind == FLAT


def test_half_row_file_reads_scattered_and_contiguous_rows(tmp_path):
    vectors = clustered(1000)
    write_rows(tmp_path / "rows.npy", vectors)
    rows = Float16Rows(tmp_path / "rows.npy")
    wanted = np.array([999, 3, 4, 5, 3, 0])
    np.testing.assert_allclose(rows.read(wanted), vectors[wanted].astype(np.float16).astype(np.float32))
    with pytest.raises(IndexCorruptError, match="no row 1000"):
        rows.read(np.array([1000]))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "rows.npy").read_bytes()[:-10])
    with pytest.raises(IndexCorruptError, match="truncated"):
        Float16Rows(tmp_path / "cut.npy")


def test_build_index_records_and_honours_the_choice(seeds_copy, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    qa.build_index(seeds_copy, index_dir, progress=False, vector_index="ivf-sq8")
    generation, manifest = IndexDirectory(index_dir).open_manifest()
    assert manifest.vector_index["type"] == IVF_SQ8 and manifest.vector_index["requested"] == IVF_SQ8
    assert f"{manifest.segments[0].name}/{HALF_ROWS_FILE}" in manifest.files
    hits = qa.load(index_dir).retrieve("¿Quién suministró drones a Rusia?", k=2)
    assert hits and hits[0].score >= hits[-1].score

    (seeds_copy / "more.txt").write_text("Otro documento breve sobre tranvías de Lisboa.", encoding="utf-8")
    qa.build_index(seeds_copy, index_dir, progress=False)  # no choice given: keeps ivf-sq8
    assert IndexDirectory(index_dir).open_manifest()[1].vector_index["type"] == IVF_SQ8

    monkeypatch.setattr(qa.store.vectors.choice, "DEFAULT_POLICY", IndexPolicy(exact_below=1000, exact_again_below=900))
    qa.build_index(seeds_copy, index_dir, progress=False, vector_index="auto", rebuild=True)
    entry = IndexDirectory(index_dir).open_manifest()[1].vector_index
    assert entry == {"type": FLAT, "requested": "auto"}
    assert qa.load(index_dir).stats().vector_index == FLAT


def test_an_unknown_vector_index_is_refused_before_any_work(seeds_copy, tmp_path):
    with pytest.raises(ValueError, match="vector index must be one of"):
        qa.build_index(seeds_copy, tmp_path / "index", progress=False, vector_index="hnsw")
    assert not (tmp_path / "index").exists()


def test_manifest_entry_is_plain_json(seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", progress=False, vector_index="ivf-sq8")
    entry = IndexDirectory(tmp_path / "index").open_manifest()[1].vector_index
    assert json.loads(json.dumps(entry)) == entry and entry["factory"].startswith("IVF")
