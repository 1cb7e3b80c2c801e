"""A float16 copy of the vectors in a ``.npy`` file, read row by row with ``pread``.

Approximate indexes keep lossy codes; this copy gives the exact re-score of their
candidates and the vectors an incremental build carries over. It is read with ``pread``
(:mod:`qa.store.row_files`) rather than memory-mapped: with a memory map, the kernel's fault-around
pulled the whole 1 GB file (1M rows) into the query process's RSS within a few hundred
queries, while ``pread`` of 50 rows takes about 0.1 ms and leaves the RSS alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import IndexCorruptError
from ..row_files import RowFile


def write_rows(path: Path, vectors: np.ndarray) -> None:
    """Write ``vectors`` as a float16 ``.npy`` file."""
    np.save(path, np.ascontiguousarray(vectors, dtype=np.float16), allow_pickle=False)


class Float16Rows(RowFile):
    """Read-only rows of a file written by :func:`write_rows`; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if self.dtype != np.dtype("<f2") or len(self.shape) != 2:
            raise IndexCorruptError(f"{path} is not a float16 row matrix; run `qa index --rebuild`")
        self.rows, self.dimension = self.shape

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``rows``, in that order.

        Neighbouring rows are fetched with one read each run, so carrying a million rows
        into a new generation is one large read, and 50 scattered rows are 50 small ones.
        """
        return self[np.asarray(rows, dtype=np.int64)].astype(np.float32)
