"""A generation as a list of immutable segments and the rows deleted from them.

::

    gen-000009/
      manifest.json          the segments in order (name, rows, vector index), checksums
      seg-000001/            the base: chunks.sqlite, vectors.faiss (+ vectors.f16.npy),
                             per-row files (piece_*.npy, ngram_*.npy, word_*.npy, profiles.npy)
      seg-000004/            a later update's new rows: the same files, a flat vector index
      deleted.npy            rows of the segments above that are gone (sorted, int64)
      ngram_df.npy, word_df.npy, lexical.json      statistics of the live rows
      vocabulary.sqlite, word_vectors*.*, word_neighbours.sqlite   the word tables

A segment's files never change. An update writes one new segment for the documents it
adds, marks the rows of the documents it removes (or changes) deleted, and hard-links the
previous generation's other segments into the new generation folder (their checksums are
carried over from the previous manifest), so it costs what changed, not the index's size.
Rows are numbered across the segments: row ``r`` of segment ``i`` is row ``starts[i] + r``.
Deleted rows keep their numbers; the vector index leaves them out of every search and the
chunk store out of every document's chunks, so nothing reaches them.

Compaction (the build's writer, :mod:`qa.build.artifacts`): when the rows outside the base segment (later segments and
deleted rows) pass COMPACT_SHARE of the index, the next build merges every live row into one
segment; when segments pass MAX_SEGMENTS, it merges the later ones into one. So updates
cost amortised O(changed rows), and a rebuild always writes one segment. Readers see a
generation through the protocols of :mod:`qa.store.protocols`: the classes here make its
segments one :class:`~qa.store.protocols.VectorIndex` and one :class:`~qa.store.protocols.ChunkStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import IndexCorruptError
from ..types import Chunk
from .chunk_table import ChunkTable
from .vectors.base import Exclusion

SEGMENT_PREFIX = "seg-"
DELETED_FILE = "deleted.npy"
#: Rows outside the base segment (later segments' rows and deleted rows) past this share of
#: all rows make the next build merge everything into one segment.
COMPACT_SHARE = 0.10
#: Segments past this many make the next build merge all but the base into one.
MAX_SEGMENTS = 8


@dataclass(frozen=True)
class SegmentEntry:
    """A segment as the manifest names it: its folder, its rows (deleted ones included) and
    its vector index's description."""

    name: str
    rows: int
    vector_index: dict[str, Any]


def segment_name(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:06d}"


def segment_number(name: str) -> int:
    return int(name[len(SEGMENT_PREFIX):])


def starts_of(rows: Sequence[int]) -> np.ndarray:
    """The first row of each segment, and the row after the last: [0, r0, r0 + r1, ...]."""
    return np.concatenate([[0], np.cumsum(np.asarray(rows, dtype=np.int64))]).astype(np.int64)


def read_deleted(folder: Path, rows: int) -> np.ndarray:
    """The generation's deleted rows (sorted, distinct, below ``rows``)."""
    path = folder / DELETED_FILE
    try:
        deleted = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from exc
    if deleted.dtype != np.int64 or deleted.ndim != 1 or (len(deleted) and (
            deleted[0] < 0 or deleted[-1] >= rows or (np.diff(deleted) <= 0).any())):
        raise IndexCorruptError(f"{path} is not a sorted list of rows below {rows}; run `qa index --rebuild`")
    return deleted


def write_deleted(folder: Path, deleted: np.ndarray) -> None:
    np.save(folder / DELETED_FILE, np.unique(np.asarray(deleted, dtype=np.int64)), allow_pickle=False)


def split_rows(rows: np.ndarray, starts: np.ndarray) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """(segment index, positions in ``rows``, the segment's own rows) of each segment ``rows`` fall in."""
    rows = np.asarray(rows, dtype=np.int64)
    owner = np.searchsorted(starts, rows, side="right") - 1
    for index in np.unique(owner).tolist():
        positions = np.flatnonzero(owner == index)
        yield index, positions, rows[positions] - starts[index]


class SegmentedVectors:
    """The segments' vector indexes as one :class:`~qa.store.protocols.VectorIndex`: each
    searched without its deleted rows, the results merged by score."""

    def __init__(self, parts: Sequence[Any], starts: np.ndarray, deleted: np.ndarray) -> None:
        self.parts = list(parts)
        self.starts = starts
        self.deleted = deleted
        # per segment, its deleted rows (its own numbers) as a selector made once
        self._without = [Exclusion(deleted[(deleted >= starts[i]) & (deleted < starts[i + 1])] - starts[i])
                         for i in range(len(self.parts))]

    @property
    def kind(self) -> str:
        return self.parts[0].kind

    @property
    def size(self) -> int:
        return int(self.starts[-1]) - len(self.deleted)

    @property
    def dimension(self) -> int:
        return self.parts[0].dimension

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        scores, rows = [], []
        for i, part in enumerate(self.parts):
            if among is None:
                found_scores, found_rows = part.search(queries, k, without=self._without[i])
            else:
                own = np.asarray(among, dtype=np.int64)
                own = own[(own >= self.starts[i]) & (own < self.starts[i + 1])] - self.starts[i]
                own = np.setdiff1d(own, self._without[i].rows, assume_unique=True)
                if not len(own):
                    continue
                found_scores, found_rows = part.search(queries, k, among=own)
            scores.append(np.where(found_rows >= 0, found_scores, -np.inf).astype(np.float32))
            rows.append(np.where(found_rows >= 0, found_rows + self.starts[i], -1))
        k = min(k, self.size if among is None else len(among))
        if not scores or k <= 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, rows = np.hstack(scores), np.hstack(rows)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, best, axis=1), np.take_along_axis(rows, best, axis=1)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        result = np.empty((len(rows), self.dimension), dtype=np.float32)
        for i, positions, own in split_rows(rows, self.starts):
            result[positions] = self.parts[i].vectors(own)
        return result

    def describe(self) -> dict[str, Any]:
        """The base segment's description (every segment's is in the manifest's ``segments``)."""
        return self.parts[0].describe()


class SegmentedChunks:
    """The segments' chunk tables as one :class:`~qa.store.protocols.ChunkStore`, rows
    numbered across them, deleted rows left out."""

    def __init__(self, tables: Sequence[ChunkTable], starts: np.ndarray, deleted: np.ndarray) -> None:
        self.tables = list(tables)
        self.starts = starts
        self.deleted = deleted

    def count(self) -> int:
        return int(self.starts[-1]) - len(self.deleted)

    def get(self, rows: Sequence[int]) -> list[Chunk]:
        found: list[Chunk | None] = [None] * len(rows)
        for i, positions, own in split_rows(np.asarray(rows, dtype=np.int64), self.starts):
            for position, chunk in zip(positions.tolist(), self.tables[i].get(own.tolist())):
                found[position] = chunk
        return found  # type: ignore[return-value]

    def of_documents(self, doc_ids: Iterable[str]) -> tuple[np.ndarray, list[Chunk]]:
        doc_ids = list(doc_ids)
        rows: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
        chunks: list[Chunk] = []
        for table, start in zip(self.tables, self.starts):  # segments are in row order
            own_rows, own_chunks = table.of_documents(doc_ids)
            rows.append(own_rows + int(start))
            chunks += own_chunks
        found = np.concatenate(rows)
        live = ~np.isin(found, self.deleted)
        return found[live], [chunk for chunk, keep in zip(chunks, live.tolist()) if keep]

    def places_by_document(self) -> dict[str, str]:
        places: dict[str, str] = {}
        for table in self.tables:
            places.update(table.places_by_document())
        return places
