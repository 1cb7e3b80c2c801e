"""What the FAISS vector indexes share (txtai's ANN habit: a base class, a class per kind,
a factory): their file names, reading and writing a FAISS file, adding vectors a batch at a
time, the row filter as a FAISS selector, and the checks every search makes first."""

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


class Exclusion:
    """Rows a search leaves out (a segment's deleted rows), as a FAISS selector made once for
    every search of an opened generation: a filter in the search itself, so the results are
    the best ``k`` of the other rows however many are left out."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = np.ascontiguousarray(np.unique(np.asarray(rows, dtype=np.int64)))
        self._left_out = selector(self.rows)  # IDSelectorNot keeps a pointer only: kept alive here
        self.selector = faiss.IDSelectorNot(self._left_out)

    def __len__(self) -> int:
        return len(self.rows)


class FaissIndex:
    """A vector index kept in a FAISS index (:class:`qa.store.protocols.VectorIndex`); a
    subclass names its ``kind`` and does the search itself (:meth:`_search`)."""

    kind: str

    def __init__(self, index: faiss.Index, requested: str) -> None:
        self.faiss_index = index
        self.requested = requested

    @property
    def size(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.faiss_index.d)

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None,
               without: Exclusion | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` scores and rows for each query row, best first; rows are -1 where there
        are fewer. ``among`` (chunk rows) restricts the search to those rows; else
        ``without`` leaves its rows out."""
        # One OpenMP thread for interactive queries: on a shared 2-core machine a second
        # thread made a single query 3 to 5 times slower (per calling thread in OpenMP).
        faiss.omp_set_num_threads(1)
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        if among is not None or without is not None and not len(without):
            without = None
        k = min(k, (self.size - len(without or ())) if among is None else len(among))
        if k <= 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self._search(queries, k, among, without)

    def _search(self, queries: np.ndarray, k: int, among: np.ndarray | None,
                without: Exclusion | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        """Write the index's files into ``folder``, a new generation (never a live one)."""
        faiss.write_index(self.faiss_index, str(folder / VECTORS_FILE))
