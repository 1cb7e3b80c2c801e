"""Approximate search for large indexes: ``IVF<nlist>,SQ8`` (an inverted file of 8-bit
scalar-quantised codes), whose candidates are re-scored exactly from a float16 copy of the
vectors (:mod:`qa.store.vectors.float16_rows`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ...errors import IndexCorruptError
from ..row_files import RowFile
from .choice import AUTO, IVF_SQ8, IndexPolicy, IndexSpec, needs_retrain, unbalanced
from .base import HALF_ROWS_FILE, VECTORS_FILE, Exclusion, FaissIndex, batches, read_faiss, selector
from .float16_rows import Float16Rows, write_rows

# k-means: 20 iterations on at most 64 points per list (the study's settings: more of
# either changed recall by less than its noise and cost build time).
_KMEANS_ITERATIONS = 20
_TRAIN_POINTS_PER_LIST = 64
# A filter of at most this many rows is searched exactly over their float16 vectors: the
# inverted file probes only nprobe lists, which may hold none of a small filter's rows, and
# scoring 20k rows exactly takes about as long as an unfiltered probe.
_EXACT_FILTER_ROWS = 20_000


class IvfSq8Index(FaissIndex):
    """Approximate search with exact scores: the ``rerank`` best candidates of the inverted
    file are re-scored from the float16 vectors."""

    kind = IVF_SQ8

    def __init__(self, index: faiss.Index, spec: IndexSpec, requested: str, half_rows: np.ndarray | Float16Rows,
                 training: dict[str, Any]) -> None:
        super().__init__(index, requested)
        self.spec = spec
        self._half_rows = half_rows
        self._training = training
        faiss.extract_index_ivf(index).nprobe = spec.nprobe

    @classmethod
    def build(cls, vectors: np.ndarray | RowFile, dimension: int, spec: IndexSpec, requested: str,
              previous: Any = None, policy: IndexPolicy | None = None) -> IvfSq8Index:
        """An index of ``vectors`` in row order. With a ``previous`` approximate index of the
        same band, its trained centroids are reused unless the retrain rule says otherwise."""
        trained = previous.describe() if previous is not None else None
        if not needs_retrain(spec, len(vectors), trained, policy):
            index = faiss.clone_index(previous.faiss_index)
            index.reset()  # keeps the trained centroids and quantiser ranges
            imbalance = _add(index, vectors)
            if not unbalanced(imbalance, trained, policy):
                training = {key: trained[key] for key in ("trained_n", "trained_imbalance")}
                return cls(index, spec, requested, _half(vectors), {**training, "imbalance": imbalance})
        index = faiss.index_factory(dimension, f"IVF{spec.nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = _KMEANS_ITERATIONS
        ivf.cp.min_points_per_centroid = 1  # tiny indexes (forced ivf-sq8) train without warnings
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), _TRAIN_POINTS_PER_LIST * spec.nlist),
                                                 replace=False)
        index.train(np.asarray(vectors[np.sort(sample)], dtype=np.float32))
        imbalance = _add(index, vectors)
        training = {"trained_n": len(vectors), "trained_imbalance": imbalance, "imbalance": imbalance}
        return cls(index, spec, requested, _half(vectors), training)

    @classmethod
    def load(cls, folder: Path, description: dict[str, Any]) -> IvfSq8Index:
        """Read an index written by :meth:`save`, as its manifest entry describes it; the
        float16 rows stay on disk and are read as needed."""
        path = folder / VECTORS_FILE
        index = read_faiss(path)
        try:
            spec = IndexSpec(IVF_SQ8, int(description["nlist"]), int(description["nprobe"]), int(description["rerank"]))
            training = {key: description[key] for key in ("trained_n", "trained_imbalance", "imbalance")}
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"the manifest's vector_index entry is incomplete ({exc}); run `qa index --rebuild`") from exc
        try:
            nlist = faiss.extract_index_ivf(index).nlist
        except RuntimeError:
            nlist = None
        if nlist != spec.nlist:
            raise IndexCorruptError(f"{path} is not the {IVF_SQ8} index its manifest describes; run `qa index --rebuild`")
        half_rows = Float16Rows(folder / HALF_ROWS_FILE)
        if (half_rows.rows, half_rows.dimension) != (index.ntotal, index.d):
            raise IndexCorruptError(f"{folder / HALF_ROWS_FILE} does not match {path}; run `qa index --rebuild`")
        return cls(index, spec, description.get("requested", AUTO), half_rows, training)

    def _search(self, queries: np.ndarray, k: int, among: np.ndarray | None,
                without: Exclusion | None) -> tuple[np.ndarray, np.ndarray]:
        # exact scores: the candidates are re-scored from the float16 vectors
        if among is not None and len(among) <= _EXACT_FILTER_ROWS:
            return self._exact_among(queries, k, np.asarray(among, dtype=np.int64))
        depth = max(k, self.spec.rerank)
        chosen = selector(among) if among is not None else without.selector if without is not None else None
        if chosen is None:
            _, candidates = self.faiss_index.search(queries, depth)
        else:
            params = faiss.SearchParametersIVF(sel=chosen, nprobe=self.spec.nprobe)
            _, candidates = self.faiss_index.search(queries, depth, params=params)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, found in enumerate(candidates):
            found = found[found >= 0]
            exact = self.vectors(found) @ queries[i]
            best = np.argsort(-exact, kind="stable")[:k]
            scores[i, :len(best)], rows[i, :len(best)] = exact[best], found[best]
        return scores, rows

    def _exact_among(self, queries: np.ndarray, k: int, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        exact = queries @ self.vectors(among).T
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(exact, best, axis=1).astype(np.float32), among[best]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``, in that order (float16 precision)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        if isinstance(self._half_rows, Float16Rows):
            return self._half_rows.read(rows)
        return self._half_rows[rows].astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"type": IVF_SQ8, "requested": self.requested, "nlist": self.spec.nlist, "nprobe": self.spec.nprobe,
                "rerank": self.spec.rerank, "factory": f"IVF{self.spec.nlist},SQ8", **self._training}

    def save(self, folder: Path) -> None:
        super().save(folder)
        rows = self._half_rows
        write_rows(folder / HALF_ROWS_FILE, rows.read(np.arange(rows.rows)) if isinstance(rows, Float16Rows) else rows)


def _add(index: faiss.Index, vectors: np.ndarray | RowFile) -> float:
    """Add ``vectors`` in row order (ids 0..n-1); returns how unbalanced the lists are."""
    for _, batch in batches(vectors):
        index.add(batch)
    return float(faiss.extract_index_ivf(index).invlists.imbalance_factor())


def _half(vectors: np.ndarray | RowFile) -> np.ndarray:
    """The float16 copy of ``vectors``, converted a batch at a time."""
    half = np.empty((len(vectors), vectors.shape[1]), dtype=np.float16)
    for start, batch in batches(vectors):
        half[start:start + len(batch)] = batch
    return half
