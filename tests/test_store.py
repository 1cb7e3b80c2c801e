"""The faiss vector store, on tiny hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from qa.errors import IndexCorruptError
from qa.store.vectors.factory import create_vector_index, load_vector_index
from qa.store.vectors.base import VECTORS_FILE


def unit(*rows):
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


VECTORS = unit([1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0, 0, 1])


def test_search_ranks_by_cosine_and_returns_rows():
    store = create_vector_index(VECTORS, 3)
    scores, rows = store.search(unit([1, 0.05, 0]), k=3)
    assert rows[0].tolist() == [0, 2, 1]
    assert scores[0][0] == pytest.approx(float(VECTORS[0] @ unit([1, 0.05, 0])[0]), rel=1e-5)
    assert list(scores[0]) == sorted(scores[0], reverse=True)


def test_k_larger_than_the_store_returns_what_there_is():
    store = create_vector_index(VECTORS[:2], 3)
    scores, rows = store.search(unit([0, 1, 0]), k=10)
    assert rows.shape == (1, 2) and rows[0].tolist() == [1, 0]


def test_empty_store_returns_nothing():
    store = create_vector_index(np.empty((0, 3), dtype=np.float32), 3)
    scores, rows = store.search(unit([0, 1, 0]), k=5)
    assert rows.shape == (1, 0)


def test_stored_vectors_come_back_by_row():
    store = create_vector_index(VECTORS, 3)
    np.testing.assert_allclose(store.vectors(np.array([3, 0])), VECTORS[[3, 0]])


def test_save_and_load_round_trip(tmp_path):
    create_vector_index(VECTORS, 3).save(tmp_path)
    store = load_vector_index(tmp_path, {"type": "flat"})
    assert (store.size, store.dimension) == (4, 3)
    np.testing.assert_allclose(store.vectors(np.arange(4)), VECTORS)


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / VECTORS_FILE).write_bytes(b"this is not a faiss index")
    with pytest.raises(IndexCorruptError, match=r"vectors\.faiss.*qa index --rebuild"):
        load_vector_index(tmp_path)
