"""The one place a build writes a generation's files, in order: the local
:class:`~qa.store.protocols.GenerationWriter`.

A generation is a list of segments and the rows deleted from them (:mod:`qa.store.segments`).
The new chunks of a build go to a new segment as they are encoded (:meth:`add`), so a build
holds one batch at a time. :meth:`keep` names the previous generation's rows that stay; the
others are deleted. :meth:`finish` then writes, in order: the vocabulary's new words
(encoded), the new segment's chunk table and per-row pointers, the statistics of the live
rows (the previous ones patched with the removed and added rows), the segments (the
previous ones hard-linked, or merged when deletions and later segments have grown: see
:mod:`qa.store.segments`), their vector indexes and the stored translations. :meth:`commit` seals the workspace and makes it the current generation,
carrying the checksums of linked files over; :meth:`abort` removes it, leaving the previous
generation as it was.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..store.chunk_table import CHUNKS_FILE, ChunkTable, write_chunks
from ..store.folder import IndexDirectory, OpenedGeneration
from ..store.links import link_or_copy
from ..store.local import LocalGeneration
from ..store.manifest import Manifest
from ..store.ranking_rows import NewRows, SegmentRowWriter, SegmentRows, write_statistics
from ..store.row_files import GrowingRowFile, RowFile
from ..store.segments import (COMPACT_SHARE, MAX_SEGMENTS, SegmentEntry, segment_name, segment_number, starts_of,
                              write_deleted)
from ..store.vectors.choice import FLAT
from ..store.vectors.factory import create_vector_index
from ..store.vectors.flat import FlatIndex
from ..store.vocabulary import VocabularyBuilder
from ..types import Chunk
from .neighbours import store_neighbours

_VECTOR_SPOOL = "vectors.spool.npy"  # a segment's chunk vectors while it is written; removed before commit
_MERGE_BLOCK = 4096  # rows of a segment carried into a merged one at a time


@dataclass
class _Source:
    """Live rows of a segment, for a merge: where its vectors, chunks and per-row files are."""

    vectors: Callable[[np.ndarray], np.ndarray]
    chunks: ChunkTable
    rows: SegmentRows
    live: np.ndarray  # the segment's own rows that are not deleted, sorted


class LocalGenerationWriter:
    """Writes one new generation into a private workspace of an index folder."""

    def __init__(self, directory: IndexDirectory, previous: LocalGeneration | None, dimension: int) -> None:
        self.directory = directory
        self.previous = previous
        self.workspace = directory.new_workspace()
        numbers = [segment_number(e.name) for e in previous.manifest.segments] if previous is not None else []
        self._next_number = max(numbers, default=0) + 1
        try:
            self._vocabulary = VocabularyBuilder(self.workspace, previous.folder if previous else None, dimension)
            # Vectors and rows go to files as they are made: a build holds one batch of them.
            self._new = self._new_segment_folder()
            self._spool = self._new / _VECTOR_SPOOL
            self._vectors = GrowingRowFile(self._spool, np.float32, (dimension,))
            self._rows = SegmentRowWriter(self._new, dimension)
        except BaseException:
            self.abort()
            raise
        self.dimension = dimension
        self._kept = np.empty(0, dtype=np.int64)
        self._linked: list[tuple[int, np.ndarray]] = []  # previous segments linked: (index, their deleted rows)
        self.vector_index: dict | None = None  # the manifest's entry (the base segment's), once finished
        self.segments: list[SegmentEntry] = []  # the manifest's segments, once finished
        self.deleted = 0  # deleted rows in those segments

    @property
    def new_segment(self) -> str:
        """The folder name of the segment the new rows go to (unless :meth:`finish` merges them)."""
        return self._new.name

    def word_ids(self, words: Iterable[str]) -> dict[str, int]:
        return self._vocabulary.ids(words)

    def keep(self, previous: LocalGeneration, rows: np.ndarray) -> None:
        """The previous generation's live ``rows`` that stay (the others are deleted): linked
        with their segments, or merged, at :meth:`finish`."""
        self._kept = np.asarray(rows, dtype=np.int64)

    def add(self, chunk_vectors: np.ndarray, rows: NewRows) -> None:
        self._vectors.append(chunk_vectors)
        self._rows.add(rows)

    def finish(self, chunks: Iterable[Chunk], encode_words: Callable[[list[str]], np.ndarray], word_table, *,
               requested_index: str | None, progress: bool, step: Callable[..., None]) -> int:
        """Write the rest in order (see the module's docstring); ``chunks`` are the new ones,
        in the order they were added. Returns how many words' translations were searched.
        ``step(name, bar=True)`` announces each step."""
        self._vectors.close()
        step("Encoding new words", bar=False)
        self._vocabulary.finish(encode_words, progress=progress)
        step("Writing the passages")
        write_chunks(self._new / CHUNKS_FILE, chunks)
        self._rows.finish()
        step("Writing the vector index")
        previous = self.previous
        removed = np.empty(0, dtype=np.int64)
        if previous is not None:  # a mask, not a sorted difference: linear in the rows
            live = previous.live_rows()
            kept = np.zeros(previous.rows.rows, dtype=bool)
            kept[self._kept] = True
            removed = live[~kept[live]]
        new_rows = self._write_segments(removed, requested_index)
        step("Writing the ranking rows")
        write_statistics(self.workspace, previous.rows if previous is not None else None, removed, new_rows,
                         self._vocabulary.size)
        step("Finding translations", bar=False)
        # the previous table still holds for an unchanged graph: update it for the new words
        unchanged = previous is not None and not self._vocabulary.graph_changed
        return store_neighbours(self.workspace, word_table, previous=previous.folder if unchanged else None,
                                progress=progress).searched

    def commit(self, manifest: Manifest) -> str:
        previous = self.previous
        opened = OpenedGeneration(previous.name, previous.manifest, previous.lease) if previous is not None else None
        return self.directory.commit(self.workspace, manifest, previous=opened)

    def abort(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)

    # ---- segments ----

    def _new_segment_folder(self) -> Path:
        folder = self.workspace / segment_name(self._next_number)
        self._next_number += 1
        folder.mkdir()
        return folder

    def _write_segments(self, removed: np.ndarray, requested: str | None) -> SegmentRowWriter:
        """The previous segments linked, with their new deleted rows, and the new one after them;
        or merged (see :mod:`qa.store.segments`: compaction). Returns the writer of the new rows."""
        previous = self.previous
        fresh = self._rows.rows
        kept: list[tuple[int, np.ndarray]] = []  # previous segments with live rows: (index, their deleted rows)
        if previous is not None:
            entries = previous.manifest.segments
            starts = starts_of([e.rows for e in entries])
            deleted = np.union1d(previous.deleted, removed)
            for i, entry in enumerate(entries):
                own = deleted[(deleted >= starts[i]) & (deleted < starts[i + 1])] - starts[i]
                if len(own) < entry.rows:
                    kept.append((i, own))
        if not kept:  # a first build, a rebuild, or nothing kept: the new segment is the index
            self._finish_new_segment(requested, alone=True)
            self._write_deleted()
            return self._rows
        entries = previous.manifest.segments
        outside = sum(entries[i].rows for i, _ in kept[1:]) + len(kept[0][1]) + fresh
        live = sum(entries[i].rows - len(own) for i, own in kept) + fresh
        other_kind = requested is not None and requested != previous.segment_vectors[0].requested
        if kept[0][0] != 0 or outside > COMPACT_SHARE * live or other_kind:
            # the base is gone, too much lies outside it, or another vector index was asked for
            self._merge(kept, fresh, requested, alone=True)
        elif len(kept) + (fresh > 0) > MAX_SEGMENTS:  # many small segments: one search each
            self._link(kept[:1])
            self._merge(kept[1:], fresh, requested, alone=False)
        else:
            self._link(kept)
            if fresh:
                self._finish_new_segment(requested, alone=False)
            else:
                shutil.rmtree(self._new)
        self._write_deleted()
        return self._rows

    def _finish_new_segment(self, requested: str | None, alone: bool) -> None:
        """The new segment's vector index: chosen by size if it is the whole index, else flat."""
        index = self._vector_index(RowFile(self._spool), requested, alone)
        self._spool.unlink()
        index.save(self._new)
        self.segments.append(SegmentEntry(self._new.name, self._rows.rows, index.describe()))

    def _vector_index(self, vectors: RowFile, requested: str | None, alone: bool):
        base = self.previous.segment_vectors[0] if self.previous is not None else None
        if alone:
            return create_vector_index(vectors, self.dimension, requested=requested, previous=base)
        # a later segment is small: searched exactly, whatever the base is
        return FlatIndex.build(vectors, self.dimension, requested or (base.requested if base is not None else FLAT))

    def _link(self, kept: list[tuple[int, np.ndarray]]) -> None:
        """Hard-link the previous generation's segments ``kept`` (their files never change)."""
        previous = self.previous
        for i, _ in kept:
            entry = previous.manifest.segments[i]
            (self.workspace / entry.name).mkdir()
            for name in previous.manifest.files:
                if name.startswith(f"{entry.name}/"):
                    link_or_copy(previous.folder / name, self.workspace / name)
            self.segments.append(entry)
        self._linked.extend(kept)

    def _merge(self, kept: list[tuple[int, np.ndarray]], fresh: int, requested: str | None, alone: bool) -> None:
        """One segment of the live rows of the previous segments ``kept`` and the new rows."""
        previous = self.previous
        # rows read to be rewritten are checked in full first, as a build checked every file before segments
        self.directory.verify_files(previous.name, previous.manifest,
                                    tuple(f"{previous.manifest.segments[i].name}/" for i, _ in kept))
        sources = [_Source(previous.segment_vectors[i].vectors, previous.segment_chunks[i],
                           previous.rows.segments[i],
                           np.setdiff1d(np.arange(previous.manifest.segments[i].rows), own, assume_unique=True))
                   for i, own in kept]
        new_vectors = RowFile(self._spool) if fresh else None
        if fresh:
            sources.append(_Source(lambda rows: np.asarray(new_vectors[rows]), ChunkTable(self._new / CHUNKS_FILE),
                                   SegmentRows(self._new), np.arange(fresh, dtype=np.int64)))
        folder = self._new_segment_folder()
        spool = folder / _VECTOR_SPOOL
        vectors = GrowingRowFile(spool, np.float32, (self.dimension,))
        rows = SegmentRowWriter(folder, self.dimension)
        for source in sources:
            rows.copy(source.rows, source.live)
            for start in range(0, len(source.live), _MERGE_BLOCK):
                vectors.append(source.vectors(source.live[start:start + _MERGE_BLOCK]))
        vectors.close()
        rows.finish()
        write_chunks(folder / CHUNKS_FILE, _renumbered(sources))
        index = self._vector_index(RowFile(spool), requested, alone)
        spool.unlink()
        index.save(folder)
        self.segments.append(SegmentEntry(folder.name, rows.rows, index.describe()))
        shutil.rmtree(self._new)

    def _write_deleted(self) -> None:
        """deleted.npy in the new row numbering (only linked segments have deleted rows), and
        the manifest's entries."""
        starts = {entry.name: start for entry, start in zip(self.segments, starts_of([e.rows for e in self.segments]))}
        deleted = [own + starts[self.previous.manifest.segments[i].name] for i, own in self._linked]
        deleted_rows = np.concatenate([np.empty(0, dtype=np.int64), *deleted])
        write_deleted(self.workspace, deleted_rows)
        self.deleted = len(deleted_rows)
        self.vector_index = self.segments[0].vector_index


def _renumbered(sources: list[_Source]) -> Iterator[Chunk]:
    """The sources' live chunks in order (the merged segment's rows 0..), read a block at a time."""
    for source in sources:
        for start in range(0, len(source.live), _MERGE_BLOCK):
            yield from source.chunks.get(source.live[start:start + _MERGE_BLOCK].tolist())
