"""The vector index of a generation: one interface (:class:`qa.store.protocols.VectorIndex`),
a class per kind, chosen here.

Vectors are L2-normalised, so inner product is cosine similarity. Row ``i`` of the index is
row ``i`` of the chunk table. The kind is chosen by size (:mod:`qa.store.vectors.choice`):
exact :class:`~qa.store.vectors.flat.FlatIndex` for small indexes,
:class:`~qa.store.vectors.ivf_sq8.IvfSq8Index` beyond. An index writes its files into the
generation folder it is given and describes itself for the manifest, which is what it is
reopened with. A new kind is a class with the same methods, named here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ...errors import IndexCorruptError
from ...machine import usable_cores
from ..row_files import RowFile
from .choice import AUTO, FLAT, IVF_SQ8, IndexPolicy, choose_spec
from .flat import FlatIndex
from .ivf_sq8 import IvfSq8Index

KINDS = {FLAT: FlatIndex, IVF_SQ8: IvfSq8Index}


def create_vector_index(vectors: np.ndarray | RowFile, dimension: int, *, requested: str | None = None,
                        previous: FlatIndex | IvfSq8Index | None = None,
                        policy: IndexPolicy | None = None) -> FlatIndex | IvfSq8Index:
    """An index holding ``vectors`` (float32, shape ``[n, dimension]``) in row order.

    ``vectors`` may be a :class:`~qa.store.row_files.RowFile`: a build spools its vectors to
    one and they are read a batch at a time, so only the index itself is held in memory.
    ``requested`` is ``auto`` (by size), ``flat`` or ``ivf-sq8``; None keeps what the
    ``previous`` index was asked for.
    """
    if not isinstance(vectors, RowFile):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dimension)
    requested = requested or (previous.requested if previous is not None else AUTO)
    spec = choose_spec(len(vectors), requested, previous.kind if previous is not None else None, policy)
    faiss.omp_set_num_threads(usable_cores())  # builds use every core; queries one
    if spec.kind == FLAT:
        return FlatIndex.build(vectors, dimension, requested)
    return IvfSq8Index.build(vectors, dimension, spec, requested, previous, policy)


def load_vector_index(folder: Path, description: dict[str, Any] | None = None) -> FlatIndex | IvfSq8Index:
    """Reopen the index a generation folder holds, as its manifest entry describes it."""
    description = description or {"type": FLAT}
    kind = KINDS.get(description.get("type", FLAT))
    if kind is None:
        raise IndexCorruptError(f"{folder} has a vector index of unknown type {description.get('type')!r}; "
                                "run `qa index --rebuild`")
    return kind.load(folder, description)
