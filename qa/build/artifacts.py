"""The one place a build writes a generation's files, in order: the local
:class:`~qa.store.protocols.GenerationWriter`.

Rows arrive in order: those kept from the previous generation first (:meth:`keep`, copied,
never re-encoded), then each batch of new chunks as it is encoded (:meth:`add`), so a build
holds one batch at a time. :meth:`finish` then writes what needs every row, in this order:
the vocabulary's new words (encoded), the chunk table, the vector index (built from the
spooled vectors), the ranking rows' pointers and frequencies, and the stored translations
(which read the finished vocabulary). :meth:`commit` seals the workspace and makes it the
current generation; :meth:`abort` removes it, leaving the previous generation as it was.
"""

from __future__ import annotations

import shutil
from typing import Callable, Iterable

import numpy as np

from ..store.chunk_table import CHUNKS_FILE, write_chunks
from ..store.folder import IndexDirectory
from ..store.local import LocalGeneration
from ..store.manifest import Manifest
from ..store.ranking_rows import NewRows, RankingRowWriter
from ..store.row_files import GrowingRowFile, RowFile
from ..store.vectors.factory import create_vector_index
from ..store.vocabulary import VocabularyBuilder
from ..types import Chunk
from .neighbours import store_neighbours

_VECTOR_SPOOL = "vectors.spool.npy"  # the chunk vectors while a build runs; removed before commit
_CARRY_BLOCK = 65_536  # vectors of kept rows carried over at a time


class LocalGenerationWriter:
    """Writes one new generation into a private workspace of an index folder."""

    def __init__(self, directory: IndexDirectory, previous: LocalGeneration | None, dimension: int) -> None:
        self.directory = directory
        self.previous = previous
        self.workspace = directory.new_workspace()
        try:
            self._vocabulary = VocabularyBuilder(self.workspace, previous.folder if previous else None, dimension)
            # Vectors and rows go to files as they are made: a build holds one batch of them.
            self._spool = self.workspace / _VECTOR_SPOOL
            self._vectors = GrowingRowFile(self._spool, np.float32, (dimension,))
            self._rows = RankingRowWriter(self.workspace, dimension)
        except BaseException:
            self.abort()
            raise
        self.dimension = dimension
        self.vector_index: dict | None = None  # the manifest's entry, once finished

    def word_ids(self, words: Iterable[str]) -> dict[str, int]:
        return self._vocabulary.ids(words)

    def keep(self, previous: LocalGeneration, rows: np.ndarray) -> None:
        for start in range(0, len(rows), _CARRY_BLOCK):
            self._vectors.append(previous.vectors.vectors(rows[start:start + _CARRY_BLOCK]))
        self._rows.keep(previous.rows, rows)

    def add(self, chunk_vectors: np.ndarray, rows: NewRows) -> None:
        self._vectors.append(chunk_vectors)
        self._rows.add(rows)

    def finish(self, chunks: Iterable[Chunk], encode_words: Callable[[list[str]], np.ndarray], word_table, *,
               requested_index: str | None, progress: bool, step: Callable[..., None]) -> int:
        """Write the rest in order (see the module's docstring); returns how many words'
        translations were searched. ``step(name, bar=True)`` announces each step."""
        self._vectors.close()
        step("Encoding new words", bar=False)
        self._vocabulary.finish(encode_words, progress=progress)
        step("Writing the passages")
        write_chunks(self.workspace / CHUNKS_FILE, chunks)
        step("Writing the vector index")
        index = create_vector_index(RowFile(self._spool), self.dimension, requested=requested_index,
                                    previous=self.previous.vectors if self.previous is not None else None)
        self._spool.unlink()
        index.save(self.workspace)
        self.vector_index = index.describe()
        step("Writing the ranking rows")
        self._rows.finish(self._vocabulary.size)
        step("Finding translations", bar=False)
        # the previous table still holds for an unchanged graph: update it for the new words
        unchanged = self.previous is not None and not self._vocabulary.graph_changed
        return store_neighbours(self.workspace, word_table, previous=self.previous.folder if unchanged else None,
                                progress=progress).searched

    def commit(self, manifest: Manifest) -> str:
        return self.directory.commit(self.workspace, manifest)

    def abort(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)
