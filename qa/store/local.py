"""The local backend: an index folder of immutable generations (:mod:`qa.store.folder`), each
opened once into the parts the protocols name (:mod:`qa.store.protocols`).

Opening a generation reads its verified manifest under a lease, then the vector index, the
chunk table, the ranking rows and the vocabulary, and checks that they agree with each
other: every reader and every build opens a generation here, the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import IndexCorruptError
from .chunk_table import CHUNKS_FILE, ChunkTable
from .folder import GenerationLease, IndexDirectory
from .manifest import Manifest
from .ranking_rows import RankingRows
from .vectors.factory import load_vector_index
from .vectors.base import VECTORS_FILE
from .vocabulary import Vocabulary


@dataclass(frozen=True)
class LocalGeneration:
    """One opened generation folder (a :class:`~qa.store.protocols.Generation`)."""

    name: str
    folder: Path
    manifest: Manifest
    vectors: object  # a VectorIndex: FlatIndex or IvfSq8Index
    chunks: ChunkTable
    rows: RankingRows
    vocabulary: Vocabulary
    lease: GenerationLease  # held while the generation is in use, so no writer removes its folder


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

    def open(self, full: bool = False) -> LocalGeneration:
        """The current generation, verified (``full``: every file's whole checksum, as a
        build checks the generation it starts from; else large files by samples) and leased.

        The lease keeps writers from removing the generation while it is in use: a file
        missing here is damage, never a rebuild's clean-up (:mod:`qa.store.folder`).
        """
        opened = self.directory.open_generation(full)
        try:
            return open_parts(opened.name, self.directory.generation_path(opened.name), opened.manifest, opened.lease)
        except BaseException:
            opened.lease.release()
            raise


def open_parts(name: str, folder: Path, manifest: Manifest, lease: GenerationLease) -> LocalGeneration:
    """The parts of the generation in ``folder``, checked against each other and the manifest."""
    vectors = load_vector_index(folder, manifest.vector_index)
    chunks = ChunkTable(folder / CHUNKS_FILE)
    rows = RankingRows(folder)
    counts = {"manifest": manifest.chunks, VECTORS_FILE: vectors.size, CHUNKS_FILE: chunks.count(),
              "per-row files": rows.rows}
    if len(set(counts.values())) != 1:
        raise IndexCorruptError(f"{folder} is inconsistent (chunk counts {counts}); run `qa index --rebuild`")
    if vectors.dimension != manifest.embedder["dimension"]:
        raise IndexCorruptError(f"{folder / VECTORS_FILE} has dimension {vectors.dimension}, "
                                f"the manifest says {manifest.embedder['dimension']}; run `qa index --rebuild`")
    vocabulary = Vocabulary(folder)
    if len(rows.words.df) != vocabulary.size:
        raise IndexCorruptError(f"{folder} has {vocabulary.size} vocabulary words but frequencies for "
                                f"{len(rows.words.df)}; run `qa index --rebuild`")
    return LocalGeneration(name, folder, manifest, vectors, chunks, rows, vocabulary, lease)
