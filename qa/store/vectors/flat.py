"""Exact inner-product search over every vector (``IndexFlatIP``): small indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..row_files import RowFile
from .choice import AUTO, FLAT
from .faiss_files import VECTORS_FILE, batches, empty_result, prepare, read_faiss, selector


class FlatIndex:
    """Exact search; the vectors themselves are the index."""

    kind = FLAT

    def __init__(self, index: faiss.Index, requested: str = AUTO) -> None:
        self.faiss_index = index
        self.requested = requested

    @classmethod
    def build(cls, vectors: np.ndarray | RowFile, dimension: int, requested: str) -> FlatIndex:
        index = faiss.IndexFlatIP(dimension)
        for _, batch in batches(vectors):
            index.add(batch)
        return cls(index, requested)

    @classmethod
    def load(cls, folder: Path, description: dict[str, Any]) -> FlatIndex:
        return cls(read_faiss(folder / VECTORS_FILE), description.get("requested", AUTO))

    @property
    def size(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.faiss_index.d)

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` scores and rows for each query row; rows are -1 where there are fewer."""
        queries = prepare(queries, self.dimension)
        k = min(k, self.size if among is None else len(among))
        if k <= 0:
            return empty_result(len(queries))
        if among is None:
            return self.faiss_index.search(queries, k)
        return self.faiss_index.search(queries, k, params=faiss.SearchParameters(sel=selector(among)))

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self.faiss_index.reconstruct_batch(rows).astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        return {"type": FLAT, "requested": self.requested}

    def save(self, folder: Path) -> None:
        faiss.write_index(self.faiss_index, str(folder / VECTORS_FILE))
