"""Rows of large per-chunk files read with pread: the same values as the loaded array."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import qa
from qa.store import ranking_rows
from qa.errors import IndexCorruptError
from qa.store.row_files import RowFile


@pytest.mark.parametrize("array", [
    np.arange(1000, dtype=np.uint32),
    np.arange(3000, dtype=np.uint16).reshape(300, 10),
    np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32),
    np.empty((0, 4), dtype=np.int32),
])
def test_rows_read_equal_the_loaded_array(tmp_path, array):
    np.save(tmp_path / "a.npy", array, allow_pickle=False)
    rows = RowFile(tmp_path / "a.npy")
    assert (len(rows), rows.shape, rows.dtype) == (len(array), array.shape, array.dtype)
    assert np.array_equal(rows[:], array) and np.array_equal(np.asarray(rows), array)
    if len(array):
        assert np.array_equal(rows[3:9], array[3:9]) and np.array_equal(rows[len(array) - 2:], array[-2:])
        picks = np.array([5, 6, 7, 2, 5, len(array) - 1])  # runs, repeats and order kept
        assert np.array_equal(rows[picks], array[picks])


def test_a_truncated_or_foreign_file_is_one_clear_error(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(100, dtype=np.uint32), allow_pickle=False)
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-8])
    with pytest.raises(IndexCorruptError, match="cut.npy is truncated"):
        RowFile(tmp_path / "cut.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(IndexCorruptError, match="junk.npy"):
        RowFile(tmp_path / "junk.npy")
    with pytest.raises(IndexCorruptError, match="no row 100"):
        RowFile(tmp_path / "a.npy")[np.array([100])]


def test_read_rows_rank_and_quote_exactly_as_mapped_ones(seed_index, monkeypatch, tmp_path):
    questions = ["Who supplied drones to Russia?", "¿Qué armas vendió Corea del Norte?", "Wer traf Putin?"]
    mapped = qa.load(seed_index)
    before = [(mapped.retrieve(q, k=3), mapped.ask(q).citations) for q in questions]
    monkeypatch.setattr(ranking_rows, "_MAPPED_FILE_BYTES", 0)  # every large file through pread
    # a copy: the same files would be shared with the open mapped index (qa.store.local)
    read = qa.load(shutil.copytree(seed_index, tmp_path / "copy"))
    assert isinstance(read.snapshot().generation.rows.segments[0].piece_vectors, RowFile)
    assert [(read.retrieve(q, k=3), read.ask(q).citations) for q in questions] == before
