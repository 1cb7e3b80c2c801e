"""What the FAISS vector indexes share: their file names, reading a FAISS file, adding
vectors a batch at a time, and the document filter as a FAISS selector."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ...errors import IndexCorruptError
from ..row_files import RowFile

VECTORS_FILE = "vectors.faiss"
HALF_ROWS_FILE = "vectors.f16.npy"
_ADD_BATCH = 65_536


def read_faiss(path: Path) -> faiss.Index:
    """The index in ``path``, read into memory (mapping it made IVF queries 3 times slower)."""
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"cannot read {path}: not a valid faiss index; run `qa index --rebuild`") from exc


def batches(vectors: np.ndarray | RowFile):
    """(first row, float32 rows) of ``vectors``, _ADD_BATCH rows at a time."""
    for start in range(0, len(vectors), _ADD_BATCH):
        yield start, np.asarray(vectors[start:start + _ADD_BATCH], dtype=np.float32)


def selector(among: np.ndarray | None) -> faiss.IDSelector | None:
    """A FAISS selector of the rows ``among`` (None: every row)."""
    if among is None:
        return None
    among = np.ascontiguousarray(among, dtype=np.int64)
    return faiss.IDSelectorBatch(len(among), faiss.swig_ptr(among))


def prepare(queries: np.ndarray, dimension: int) -> np.ndarray:
    """Queries as contiguous float32 rows; and one OpenMP thread for interactive queries: on
    a shared 2-core machine a second thread made a single query 3 to 5 times slower (the
    setting is per calling thread in OpenMP)."""
    faiss.omp_set_num_threads(1)
    return np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, dimension)


def empty_result(queries: int) -> tuple[np.ndarray, np.ndarray]:
    empty = np.empty((queries, 0))
    return empty.astype(np.float32), empty.astype(np.int64)
