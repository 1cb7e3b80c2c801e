"""An int8 copy of the vectors in a ``.npy`` file, read row by row with ``pread``.

Approximate indexes keep lossy codes; this copy gives the exact re-score of their
candidates and the vectors an incremental build carries over. Each row is the vector's
int8 codes scaled by its largest magnitude (:func:`~qa.store.codecs.to_int8`; cosines
within 2e-3) followed by that float32 scale's 4 bytes, so one read fetches both: half the
bytes of the float16 copy this was. It is read with ``pread`` (:mod:`qa.store.row_files`)
rather than memory-mapped: with a memory map, the kernel's fault-around pulled the whole
file into the query process's RSS within a few hundred queries, while ``pread`` of 50 rows
takes about 0.1 ms and leaves the RSS alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import IndexCorruptError
from ..codecs import to_int8
from ..row_files import RowFile

_SCALE_BYTES = 4


def int8_rows(vectors: np.ndarray) -> np.ndarray:
    """The stored form of float32 ``vectors``: int8 [rows, dimension + 4], codes then scale."""
    codes, scales = to_int8(vectors)
    return np.concatenate([codes, scales.astype("<f4").view(np.int8).reshape(-1, _SCALE_BYTES)], axis=1)


def write_rows(path: Path, vectors: np.ndarray) -> None:
    """Write stored rows (:func:`int8_rows`) as an ``.npy`` file."""
    np.save(path, np.ascontiguousarray(vectors, dtype=np.int8), allow_pickle=False)


def decode(stored: np.ndarray) -> np.ndarray:
    """float32 vectors of stored rows (:func:`int8_rows`)."""
    stored = np.ascontiguousarray(stored, dtype=np.int8)
    scales = stored[:, -_SCALE_BYTES:].copy().view("<f4")
    return stored[:, :-_SCALE_BYTES].astype(np.float32) * scales


class Int8Rows(RowFile):
    """Read-only rows of a file written by :func:`write_rows`; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if self.dtype != np.dtype("i1") or len(self.shape) != 2 or self.shape[1] <= _SCALE_BYTES:
            raise IndexCorruptError(f"{path} is not an int8 row matrix; run `qa index --rebuild`")
        self.rows, self.dimension = self.shape[0], self.shape[1] - _SCALE_BYTES

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``rows``, in that order.

        Neighbouring rows are fetched with one read each run, so carrying a million rows
        into a new generation is one large read, and 50 scattered rows are 50 small ones.
        """
        return decode(self[np.asarray(rows, dtype=np.int64)])
