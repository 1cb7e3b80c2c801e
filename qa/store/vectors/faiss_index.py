"""The vector store: the only module that imports faiss.

Vectors are L2-normalised, so inner product is cosine similarity. Row ``i`` of the store
is row ``i`` of the chunk table. The index type is chosen by size (:mod:`qa.store.vectors.choice`):
exact ``IndexFlatIP`` for small indexes, ``IVF<nlist>,SQ8`` beyond, whose candidates are
re-scored exactly from a float16 copy of the vectors (:mod:`qa.store.vectors.float16_rows`). The store writes
its files into the generation folder it is given and describes itself for the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ...encode.embedder import usable_cores
from ...errors import IndexCorruptError
from .float16_rows import HalfRowFile, write_rows
from .choice import AUTO, FLAT, IVF_SQ8, IndexPolicy, IndexSpec, choose_spec, needs_retrain, unbalanced
from ..row_files import RowFile

VECTORS_FILE = "vectors.faiss"
HALF_ROWS_FILE = "vectors.f16.npy"
# k-means: 20 iterations on at most 64 points per list (the study's settings: more of
# either changed recall by less than its noise and cost build time).
_KMEANS_ITERATIONS = 20
_TRAIN_POINTS_PER_LIST = 64
_ADD_BATCH = 65_536


class VectorStore:
    """Inner-product search over a fixed set of vectors, exact or approximate by size."""

    def __init__(self, index: faiss.Index, spec: IndexSpec, requested: str, half_rows: np.ndarray | HalfRowFile | None,
                 training: dict[str, Any]) -> None:
        self._index = index
        self.spec = spec
        self.requested = requested
        self._half_rows = half_rows
        self._training = training
        if spec.kind == IVF_SQ8:
            faiss.extract_index_ivf(index).nprobe = spec.nprobe

    @property
    def kind(self) -> str:
        return self.spec.kind

    @classmethod
    def create(cls, vectors: np.ndarray | RowFile, dimension: int, *, requested: str | None = None,
               previous: VectorStore | None = None, policy: IndexPolicy | None = None) -> VectorStore:
        """A store holding ``vectors`` (float32, shape ``[n, dimension]``) in row order.

        ``vectors`` may be a :class:`~qa.store.row_files.RowFile`: a build spools its vectors to one
        and they are read a batch at a time, so only the index itself is held in memory.
        ``requested`` is ``auto`` (by size), ``flat`` or ``ivf-sq8``; None keeps what the
        ``previous`` store was asked for. With a ``previous`` approximate store of the same
        band, its trained centroids are reused unless the retrain rule says otherwise.
        """
        if not isinstance(vectors, RowFile):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dimension)
        requested = requested or (previous.requested if previous is not None else AUTO)
        spec = choose_spec(len(vectors), requested, previous.kind if previous is not None else None, policy)
        faiss.omp_set_num_threads(usable_cores())  # builds use every core; queries one (see search)
        if spec.kind == FLAT:
            index = faiss.IndexFlatIP(dimension)
            for _, batch in _batches(vectors):
                index.add(batch)
            return cls(index, spec, requested, None, {})
        trained = previous.describe() if previous is not None else None
        if not needs_retrain(spec, len(vectors), trained, policy):
            index = faiss.clone_index(previous._index)
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

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` scores and rows for each query row; rows are -1 where there are fewer.

        Approximate stores return exact scores: their ``rerank`` best candidates are
        re-scored from the float16 vectors.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        k = min(k, self.size)
        if k <= 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        # One thread for interactive queries: on a shared 2-core machine a second OpenMP
        # thread made a single query 3 to 5 times slower. (Per calling thread in OpenMP.)
        faiss.omp_set_num_threads(1)
        if self.kind == FLAT:
            return self._index.search(queries, k)
        _, candidates = self._index.search(queries, max(k, self.spec.rerank))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, found in enumerate(candidates):
            found = found[found >= 0]
            exact = self.vectors(found) @ queries[i]
            best = np.argsort(-exact, kind="stable")[:k]
            scores[i, :len(best)], rows[i, :len(best)] = exact[best], found[best]
        return scores, rows

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``, in that order (float16 precision if approximate)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        if self.kind == FLAT:
            return self._index.reconstruct_batch(rows).astype(np.float32, copy=False)
        if isinstance(self._half_rows, HalfRowFile):
            return self._half_rows.read(rows)
        return self._half_rows[rows].astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """The manifest's ``vector_index`` entry: type, what was requested, parameters, training."""
        entry: dict[str, Any] = {"type": self.kind, "requested": self.requested}
        if self.kind == IVF_SQ8:
            entry.update(nlist=self.spec.nlist, nprobe=self.spec.nprobe, rerank=self.spec.rerank,
                         factory=f"IVF{self.spec.nlist},SQ8", **self._training)
        return entry

    def save(self, folder: Path) -> None:
        """Write the store's files into ``folder``, a new generation (never a live one)."""
        faiss.write_index(self._index, str(folder / VECTORS_FILE))
        if self.kind == IVF_SQ8:
            rows = self._half_rows
            write_rows(folder / HALF_ROWS_FILE, rows.read(np.arange(rows.rows)) if isinstance(rows, HalfRowFile) else rows)

    @classmethod
    def load(cls, folder: Path, description: dict[str, Any] | None = None) -> VectorStore:
        """Read a store written by :meth:`save`, as its manifest entry describes it.

        The faiss file is read into memory (mapping it made IVF queries 3 times slower);
        the float16 rows stay on disk and are read as needed.
        """
        description = description or {"type": FLAT}
        kind = description.get("type", FLAT)
        path = folder / VECTORS_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read {path}: not a valid faiss index; run `qa index --rebuild`") from exc
        try:
            if kind == FLAT:
                return cls(index, IndexSpec(FLAT), description.get("requested", AUTO), None, {})
            spec = IndexSpec(IVF_SQ8, int(description["nlist"]), int(description["nprobe"]), int(description["rerank"]))
            training = {key: description[key] for key in ("trained_n", "trained_imbalance", "imbalance")}
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"the manifest's vector_index entry is incomplete ({exc}); run `qa index --rebuild`") from exc
        if kind != IVF_SQ8 or faiss.extract_index_ivf(index).nlist != spec.nlist:
            raise IndexCorruptError(f"{path} is not the {kind} index its manifest describes; run `qa index --rebuild`")
        half_rows = HalfRowFile(folder / HALF_ROWS_FILE)
        if (half_rows.rows, half_rows.dimension) != (index.ntotal, index.d):
            raise IndexCorruptError(f"{folder / HALF_ROWS_FILE} does not match {path}; run `qa index --rebuild`")
        return cls(index, spec, description.get("requested", AUTO), half_rows, training)


def _add(index: faiss.Index, vectors: np.ndarray | RowFile) -> float:
    """Add ``vectors`` in row order (ids 0..n-1); returns how unbalanced the lists are."""
    for _, batch in _batches(vectors):
        index.add(batch)
    return float(faiss.extract_index_ivf(index).invlists.imbalance_factor())


def _batches(vectors: np.ndarray | RowFile):
    """(first row, float32 rows) of ``vectors``, _ADD_BATCH rows at a time."""
    for start in range(0, len(vectors), _ADD_BATCH):
        yield start, np.asarray(vectors[start:start + _ADD_BATCH], dtype=np.float32)


def _half(vectors: np.ndarray | RowFile) -> np.ndarray:
    """The float16 copy of ``vectors``, converted a batch at a time."""
    half = np.empty((len(vectors), vectors.shape[1]), dtype=np.float16)
    for start, batch in _batches(vectors):
        half[start:start + len(batch)] = batch
    return half
