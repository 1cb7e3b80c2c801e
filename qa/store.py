"""The vector store: the only module that imports faiss.

Vectors are L2-normalised, so inner product is cosine similarity. Row ``i`` of the store
is row ``i`` of the chunk table.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .errors import IndexCorruptError

VECTORS_FILE = "vectors.faiss"


class VectorStore:
    """Exact inner-product search over a fixed set of vectors."""

    kind = "flat"

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def create(cls, vectors: np.ndarray, dimension: int) -> VectorStore:
        """A store holding ``vectors`` (float32, shape ``[n, dimension]``) in row order."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dimension)
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` scores and rows for each query row; rows are -1 where there are fewer."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        k = min(k, self.size)
        if k <= 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self._index.search(queries, k)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(rows).astype(np.float32, copy=False)

    def save(self, path: Path) -> None:
        """Write the store to a new file (never over a live one: faiss truncates in place)."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        """Read a store written by :meth:`save`."""
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read {path}: not a valid faiss index; run `qa index --rebuild`") from exc
