"""Exact inner-product search over every vector (``IndexFlatIP``): small indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..row_files import RowFile
from .choice import AUTO, FLAT
from .base import VECTORS_FILE, Exclusion, FaissIndex, batches, read_faiss, selector


class FlatIndex(FaissIndex):
    """Exact search; the vectors themselves are the index."""

    kind = FLAT

    @classmethod
    def build(cls, vectors: np.ndarray | RowFile, dimension: int, requested: str) -> FlatIndex:
        index = faiss.IndexFlatIP(dimension)
        for _, batch in batches(vectors):
            index.add(batch)
        return cls(index, requested)

    @classmethod
    def load(cls, folder: Path, description: dict[str, Any]) -> FlatIndex:
        return cls(read_faiss(folder / VECTORS_FILE), description.get("requested", AUTO))

    def _search(self, queries: np.ndarray, k: int, among: np.ndarray | None,
                without: Exclusion | None) -> tuple[np.ndarray, np.ndarray]:
        if among is not None:
            return self.faiss_index.search(queries, k, params=faiss.SearchParameters(sel=selector(among)))
        if without is not None:
            return self.faiss_index.search(queries, k, params=faiss.SearchParameters(sel=without.selector))
        return self.faiss_index.search(queries, k)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self.faiss_index.reconstruct_batch(rows).astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        return {"type": FLAT, "requested": self.requested}
