"""Rows of a ``.npy`` file read on demand with ``pread``, never memory-mapped.

Queries read a few scattered rows of large per-chunk files. Through a memory map, the
kernel's fault-around maps up to 64 KB of cached pages around every row touched, and they
stay in the query process's RSS: at 1M chunks, 6.6 MB more per query and 2.9 GB after 300
(MADV_RANDOM does not stop fault-around). ``pread`` copies just the bytes asked for, and
the open descriptor keeps the file readable after a rebuild deletes its generation.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np

from ..errors import IndexCorruptError


class RowFile:
    """Read-only rows of a C-ordered ``.npy`` file; safe to share between threads.

    Indexing with a slice or an array of row numbers returns a new ndarray, as indexing the
    loaded array would; neighbouring rows are fetched with one read per run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(handle)
                offset = handle.tell()
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from exc
        if fortran or dtype.hasobject or len(shape) == 0:
            raise IndexCorruptError(f"{path} is not an array of rows; run `qa index --rebuild`")
        self.shape: tuple[int, ...] = tuple(int(v) for v in shape)
        self.dtype: np.dtype = dtype
        self._row_bytes = dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self._offset = offset
        if os.path.getsize(path) != offset + len(self) * self._row_bytes:
            raise IndexCorruptError(f"{path} is truncated; run `qa index --rebuild`")
        self._fd = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole file, read (for tests and whole-file copies)."""
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise ValueError("RowFile slices take every row")
            return self._read_run(start, max(start, stop))
        rows = np.asarray(key, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexCorruptError(f"{self.path} has no row {int(rows.max())}; run `qa index --rebuild`")
        unique, inverse = np.unique(rows, return_inverse=True)
        block = np.empty((len(unique),) + self.shape[1:], dtype=self.dtype)
        if block.size == 0:
            return block[inverse.reshape(rows.shape)]
        view = memoryview(block.reshape(-1)).cast("B")
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        for first, end in zip([0, *breaks.tolist()], [*breaks.tolist(), len(unique)]):
            self._read_into(view[first * self._row_bytes:end * self._row_bytes], int(unique[first]))
        return block[inverse.reshape(rows.shape)]

    def _read_run(self, start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        if block.size:
            self._read_into(memoryview(block.reshape(-1)).cast("B"), start)
        return block

    def _read_into(self, target: memoryview, row: int) -> None:
        offset, done = self._offset + row * self._row_bytes, 0
        while done < len(target):  # one read returns at most 2 GiB on Linux
            got = os.preadv(self._fd, [target[done:]], offset + done)
            if got == 0:
                raise IndexCorruptError(f"{self.path} ended early; run `qa index --rebuild`")
            done += got

    def close(self) -> None:
        self._closer()


class GrowingRowFile:
    """A ``.npy`` file written by appending rows, so that its writer need not hold them all;
    its header's row count is set at close.

    NumPy pads a header with room for the largest row count, so the final header has the
    length of the first one and is written over it in place.
    """

    def __init__(self, path: Path, dtype, shape: tuple[int, ...]) -> None:
        self.dtype, self.row_shape, self.rows = np.dtype(dtype), tuple(shape), 0
        self._file = open(path, "wb")
        self._data_offset = self._write_header()

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype).reshape((-1, *self.row_shape))
        self._file.write(values.data)
        self.rows += len(values)

    def close(self) -> None:
        if self._write_header() != self._data_offset:
            raise RuntimeError(f"{self._file.name}: the .npy header changed length")
        self._file.close()

    def _write_header(self) -> int:
        self._file.seek(0)
        np.lib.format.write_array_header_1_0(self._file, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.rows, *self.row_shape)})
        offset = self._file.tell()
        self._file.seek(0, os.SEEK_END)
        return offset
