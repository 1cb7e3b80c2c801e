"""The local backend: an index folder of immutable generations (:mod:`qa.store.folder`), each
opened once into the parts the protocols name (:mod:`qa.store.protocols`).

Opening a generation reads its verified manifest under a lease, then each segment's vector
index, chunk table and per-row files (:mod:`qa.store.segments`), the statistics and the
vocabulary, and checks that they agree with each other: every reader and every build opens
a generation here, the same way. A generation of one segment with nothing deleted (every
fresh build) is read through that segment's own parts.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexCorruptError
from .chunk_table import CHUNKS_FILE, ChunkTable
from .folder import GenerationLease, IndexDirectory
from .manifest import Manifest
from .ranking_rows import RankingRows, SegmentRows
from .segments import SegmentedChunks, SegmentedVectors, SegmentEntry, read_deleted, starts_of
from .vectors.factory import load_vector_index
from .vectors.base import VECTORS_FILE
from .vocabulary import Vocabulary


@dataclass(frozen=True)
class LocalGeneration:
    """One opened generation folder (a :class:`~qa.store.protocols.Generation`)."""

    name: str
    folder: Path
    manifest: Manifest
    vectors: object  # a VectorIndex: FlatIndex or IvfSq8Index (one segment), or SegmentedVectors
    chunks: ChunkTable | SegmentedChunks
    rows: RankingRows
    vocabulary: Vocabulary
    lease: GenerationLease  # held while the generation is in use, so no writer removes its folder
    segment_vectors: tuple  # each segment's own vector index, in order
    segment_chunks: tuple[ChunkTable, ...]
    deleted: np.ndarray  # sorted deleted rows

    def live_rows(self) -> np.ndarray:
        """Every row that is not deleted, in order."""
        live = np.ones(self.rows.rows, dtype=bool)
        live[self.deleted] = False
        return np.flatnonzero(live)


class LocalGenerations:
    """An index folder's generations (a :class:`~qa.store.protocols.Generations`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.directory = IndexDirectory(path)

    @property
    def location(self) -> str:
        return str(self.directory.path)

    def current_generation(self) -> str | None:
        return self.directory.current_generation()

    def size_bytes(self, generation: str) -> int:
        return self.directory.size_bytes(generation)

    def open(self, full: bool = False, for_update: bool = False) -> LocalGeneration:
        """The current generation, verified (``full``: every file's whole checksum; else
        large files by samples; ``for_update``: as a build checks the generation it starts
        from, see :meth:`~qa.store.folder.IndexDirectory.open_generation`) and leased.

        The lease keeps writers from removing the generation while it is in use: a file
        missing here is damage, never a rebuild's clean-up (:mod:`qa.store.folder`).
        """
        opened = self.directory.open_generation(full, for_update)
        try:
            return open_parts(opened.name, self.directory.generation_path(opened.name), opened.manifest, opened.lease,
                              for_update)
        except BaseException:
            opened.lease.release()
            raise


class _OnFirstUse:
    """A segment's vector index read when first used (a build's, ``for_update``): an update
    that links the segment never searches it, and reading it costs what the segment holds
    (0.5 GB at 1M chunks). Its kind, choice and size come from the manifest."""

    def __init__(self, folder: Path, description: dict, rows: int) -> None:
        self._folder, self._description, self.size = folder, description, rows
        self.kind = description.get("type")
        self.requested = description.get("requested")
        self._index = None

    def __getattr__(self, name: str):
        if self._index is None:
            self._index = load_vector_index(self._folder, self._description)
        return getattr(self._index, name)


class _OpenSegments:
    """The segments open in this process, shared by the generations that hold them.

    An update links the segments it keeps, unchanged, into the next generation: the same
    files (device, inode, size, modification time). A reader that reopens after the update
    takes the parts it already has open for them and opens only the update's own segment
    (at 100k chunks, each segment's 15 files took ~0.1 s to open). Weak: a segment that no
    open generation holds is let go. Sharing is safe: the parts are read-only, and an open
    file outlives the folder that a writer removes once no lease holds it."""

    def __init__(self) -> None:
        self._vectors: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._tables: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._rows: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def parts(self, where: Path, entry: SegmentEntry) -> tuple:
        """The vector index, chunk table and per-row files of the segment at ``where``."""
        key = (entry.name, entry.rows, json.dumps(entry.vector_index, sort_keys=True),
               *(_identity(where / name) for name in (CHUNKS_FILE, VECTORS_FILE)))
        with self._lock:
            parts = (self._vectors.get(key), self._tables.get(key), self._rows.get(key))
            if None not in parts:
                return parts
            parts = (load_vector_index(where, entry.vector_index), ChunkTable(where / CHUNKS_FILE), SegmentRows(where))
            self._vectors[key], self._tables[key], self._rows[key] = parts
            return parts


def _identity(path: Path) -> tuple[int, int, int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; run `qa index --rebuild`") from None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


_OPEN_SEGMENTS = _OpenSegments()


def open_parts(name: str, folder: Path, manifest: Manifest, lease: GenerationLease,
               for_update: bool = False) -> LocalGeneration:
    """The parts of the generation in ``folder``, checked against each other and the manifest;
    ``for_update`` (a build's): each segment's vector index read only when first used."""
    if not manifest.segments:
        raise IndexCorruptError(f"{folder} names no segments; run `qa index --rebuild`")
    vectors, tables, segment_rows = [], [], []
    for entry in manifest.segments:
        where = folder / entry.name
        if for_update:
            parts = (_OnFirstUse(where, entry.vector_index, entry.rows), ChunkTable(where / CHUNKS_FILE), SegmentRows(where))
        else:
            parts = _OPEN_SEGMENTS.parts(where, entry)
        vectors.append(parts[0])
        tables.append(parts[1])
        segment_rows.append(parts[2])
        counts = {"manifest": entry.rows, VECTORS_FILE: vectors[-1].size, CHUNKS_FILE: tables[-1].rows,
                  "per-row files": segment_rows[-1].rows}
        if len(set(counts.values())) != 1:
            raise IndexCorruptError(f"{where} is inconsistent (chunk counts {counts}); run `qa index --rebuild`")
        if not for_update and vectors[-1].dimension != manifest.embedder["dimension"]:
            raise IndexCorruptError(f"{where / VECTORS_FILE} has dimension {vectors[-1].dimension}, "
                                    f"the manifest says {manifest.embedder['dimension']}; run `qa index --rebuild`")
    starts = starts_of([entry.rows for entry in manifest.segments])
    deleted = read_deleted(folder, int(starts[-1]))
    rows = RankingRows(folder, segment_rows)
    live = {"manifest": manifest.chunks, "segments less deleted rows": int(starts[-1]) - len(deleted),
            "deleted rows": int(starts[-1]) - manifest.deleted, "statistics": rows.ngrams.rows}
    if len(set(live.values())) != 1:
        raise IndexCorruptError(f"{folder} is inconsistent (chunk counts {live}); run `qa index --rebuild`")
    vocabulary = Vocabulary(folder)
    if len(rows.words.df) != vocabulary.size:
        raise IndexCorruptError(f"{folder} has {vocabulary.size} vocabulary words but frequencies for "
                                f"{len(rows.words.df)}; run `qa index --rebuild`")
    if len(vectors) == 1 and not len(deleted):
        return LocalGeneration(name, folder, manifest, vectors[0], tables[0], rows, vocabulary, lease,
                               tuple(vectors), tuple(tables), deleted)
    return LocalGeneration(name, folder, manifest, SegmentedVectors(vectors, starts, deleted),
                           SegmentedChunks(tables, starts, deleted), rows, vocabulary, lease,
                           tuple(vectors), tuple(tables), deleted)
