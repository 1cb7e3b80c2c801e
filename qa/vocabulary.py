"""The index's vocabulary and its word vectors: the cross-lingual "translation" channel.

Every distinct word of the indexed chunks (see :func:`qa.lexical.words`) is encoded on its
own with the index's encoder and kept in an HNSW graph. At query time each query word is
replaced by its nearest vocabulary words (player -> jugador, season -> temporada), which
then score candidates with word BM25. No dictionary and no language is involved: the
encoder's cross-lingual space does the translating.

Word ids are stable and only ever appended, so an incremental build encodes only words the
index has never seen and adds them to a copy of the previous graph. Each build then stores
the neighbours of every word it knows (:func:`store_neighbours`), so that most query words
need no search at query time.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import faiss
import numpy as np

from . import neighbour_table
from .errors import IndexCorruptError
from .neighbour_table import NEIGHBOURS_FILE, Neighbours, NeighbourTable
from .readonly_db import ReadOnlyDatabase

if TYPE_CHECKING:
    from .whole_words import WholeWords

VOCABULARY_FILE = "vocabulary.sqlite"
WORD_VECTORS_FILE = "word_vectors.faiss"
# A query word's nearest vocabulary words, and how close a word must be to count as a
# translation (tuned on the tuning half of XQuAD-R: 3 and 0.6 beat 5/10 and 0.7/0.8).
TRANSLATIONS_PER_WORD = 3
MIN_TRANSLATION_COSINE = 0.6
# HNSW graph: 32 links per node; vectors stored as float16 (half the memory, cosines
# within 1e-3 of float32).
_HNSW_FACTORY = "HNSW32,SQfp16"
_EF_CONSTRUCTION = 80
_EF_SEARCH = 32
_SPARE_NEIGHBOURS = 3
_ENCODE_BATCH = 512
# Words whose neighbours a build searches at once: bounds its memory for any vocabulary.
_NEIGHBOUR_BATCH = 4096
_SQLITE_VARIABLES = 900


@dataclass(frozen=True)
class Translations:
    """Vocabulary words standing in for query words.

    ``ids`` (sorted, distinct) are vocabulary word ids; ``group[i]`` is the query word that
    ``ids[i]`` translates and ``weight[i]`` their cosine. ``words`` counts the query words.
    """

    ids: np.ndarray
    group: np.ndarray
    weight: np.ndarray
    words: int

    @classmethod
    def none(cls, words: int = 0) -> Translations:
        """No translations for ``words`` query words."""
        return cls(np.empty(0, np.uint32), np.empty(0, np.int64), np.empty(0, np.float32), words)

    @classmethod
    def of(cls, neighbours: Sequence[Neighbours]) -> Translations:
        """Each query word's neighbours with cosine >= MIN_TRANSLATION_COSINE.

        A vocabulary word claimed by two query words goes to the closer one.
        """
        best: dict[int, tuple[float, int]] = {}
        for group, near in enumerate(neighbours):
            for word_id, cosine in zip(near.ids, near.cosines):
                if cosine >= MIN_TRANSLATION_COSINE and cosine > best.get(word_id, (-1.0, 0))[0]:
                    best[word_id] = (cosine, group)
        if not best:
            return cls.none(len(neighbours))
        order = sorted(best)
        return cls(
            ids=np.array(order, dtype=np.uint32),
            group=np.array([best[i][1] for i in order], dtype=np.int64),
            weight=np.array([best[i][0] for i in order], dtype=np.float32),
            words=len(neighbours),
        )


class Vocabulary:
    """Read-only vocabulary of one index generation; safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / VOCABULARY_FILE
        self._query = ReadOnlyDatabase(self.path).query
        try:
            # The graph's vectors are memory-mapped: only the pages a search touches are read.
            self._graph = faiss.read_index(str(folder / WORD_VECTORS_FILE), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read {folder / WORD_VECTORS_FILE}: {exc}; run `qa index --rebuild`") from exc
        faiss.downcast_index(self._graph).hnsw.efSearch = _EF_SEARCH
        stored = folder / NEIGHBOURS_FILE
        self._stored = NeighbourTable(stored) if stored.exists() else None
        if self.size != self._graph.ntotal:
            raise IndexCorruptError(f"{self.path} holds {self.size} words but {WORD_VECTORS_FILE} "
                                    f"{self._graph.ntotal} vectors; run `qa index --rebuild`")

    @property
    def size(self) -> int:
        """Words in the vocabulary (ids are 0..size-1)."""
        return int(self._query("SELECT COUNT(*) FROM words")[0][0])

    def ids(self, words: Sequence[str]) -> dict[str, int]:
        """The ids of those ``words`` that are in the vocabulary."""
        return _lookup(self._query, words)

    def words(self, ids: Sequence[int]) -> dict[int, str]:
        """The words of vocabulary ids."""
        found: dict[int, str] = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), _SQLITE_VARIABLES):
            batch = ids[i:i + _SQLITE_VARIABLES]
            marks = ",".join("?" * len(batch))
            found.update(self._query(f"SELECT id, word FROM words WHERE id IN ({marks})", batch))
        return found

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of vocabulary words, in the order asked."""
        if not len(ids):
            return np.empty((0, self._graph.d), dtype=np.float32)
        return self._graph.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def neighbours(self, word_vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
        """The TRANSLATIONS_PER_WORD nearest vocabulary words of each vector (HNSW search)
        among those that some chunk still contains (``in_use[id] > 0``: document frequencies).

        Ids are never reused, so the words of removed documents stay in the graph; a few
        spare neighbours are asked for so that they do not take a translation's place.
        """
        # One OpenMP thread for a query, as in VectorStore.search (per calling thread).
        faiss.omp_set_num_threads(1)
        return nearest(self._graph, word_vectors, in_use)

    @property
    def stores_neighbours(self) -> bool:
        """Whether the build stored the neighbours of every vocabulary word (indexes built
        before builds did so have none)."""
        return self._stored is not None

    def stored_neighbours(self, words: Sequence[str]) -> dict[str, Neighbours]:
        """The neighbours the build found for those ``words`` it knew (:mod:`qa.neighbour_table`);
        empty for an index built before builds stored them."""
        return self._stored.get(words) if self._stored is not None else {}


def nearest(graph: faiss.Index, word_vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
    """The TRANSLATIONS_PER_WORD nearest words of ``graph`` to each vector, among those in use
    (see :meth:`Vocabulary.neighbours`), searched with as many OpenMP threads as the caller set."""
    ids, cosines = nearest_arrays(graph, word_vectors, in_use)
    kept = (ids >= 0).sum(axis=1).tolist()  # found neighbours come first in each row
    return [Neighbours(tuple(i[:n]), tuple(c[:n])) for i, c, n in zip(ids.tolist(), cosines.tolist(), kept)]


def nearest_arrays(graph: faiss.Index, word_vectors: np.ndarray, in_use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest` as arrays [vectors, TRANSLATIONS_PER_WORD] of word ids (best first, -1
    after the last found) and their cosines: a build finds tens of thousands at once."""
    n = len(word_vectors)
    ids = np.full((n, TRANSLATIONS_PER_WORD), -1, dtype=np.int64)
    cosines = np.zeros((n, TRANSLATIONS_PER_WORD), dtype=np.float32)
    if n == 0 or graph.ntotal == 0:
        return ids, cosines
    k = min(TRANSLATIONS_PER_WORD + _SPARE_NEIGHBOURS, graph.ntotal)
    found_cosines, found = graph.search(np.ascontiguousarray(word_vectors, dtype=np.float32), k)
    usable = (found >= 0) & (found < len(in_use))
    usable[usable] = np.asarray(in_use)[found[usable]] > 0
    place = usable.cumsum(axis=1) - 1  # among the usable ones of its row
    rows, columns = (usable & (place < TRANSLATIONS_PER_WORD)).nonzero()
    ids[rows, place[rows, columns]] = found[rows, columns]
    cosines[rows, place[rows, columns]] = found_cosines[rows, columns]
    return ids, cosines


def _lookup(query: Callable[[str, Sequence], list[tuple]], words: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    words = list(words)
    for i in range(0, len(words), _SQLITE_VARIABLES):
        batch = words[i:i + _SQLITE_VARIABLES]
        marks = ",".join("?" * len(batch))
        found.update(query(f"SELECT word, id FROM words WHERE word IN ({marks})", batch))
    return found


class VocabularyBuilder:
    """Writes a generation's vocabulary: the previous one plus the words new chunks bring.

    Only the new words are encoded; their vectors are added to a copy of the previous graph.
    """

    def __init__(self, workspace: Path, previous: Path | None, dimension: int) -> None:
        self.workspace = workspace
        self.previous = previous
        self.dimension = dimension
        path = workspace / VOCABULARY_FILE
        if previous is not None:
            shutil.copyfile(previous / VOCABULARY_FILE, path)
        self._connection = sqlite3.connect(path)
        self._connection.execute("PRAGMA journal_mode=OFF")  # a private file; fsynced at commit
        self._connection.execute("PRAGMA synchronous=OFF")
        self._connection.execute("CREATE TABLE IF NOT EXISTS words (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE)")
        self.size = int(self._connection.execute("SELECT COUNT(*) FROM words").fetchone()[0])
        self.new_words: list[str] = []
        self._new_ids: dict[str, int] = {}

    def ids(self, words: Iterable[str]) -> dict[str, int]:
        """Ids for ``words``, assigning new ids (appended) to words not seen before."""
        words = set(words)
        known = _lookup(lambda sql, p: self._connection.execute(sql, p).fetchall(), sorted(words - self._new_ids.keys()))
        result = {w: known.get(w, self._new_ids.get(w)) for w in words}
        for word in sorted(w for w, i in result.items() if i is None):
            result[word] = self._new_ids[word] = self.size
            self.new_words.append(word)
            self.size += 1
        return result

    def finish(self, encode: Callable[[list[str]], np.ndarray], progress: bool = False) -> None:
        """Encode the new words, store them and their vectors, and close the files."""
        try:
            self._connection.executemany("INSERT INTO words (id, word) VALUES (?, ?)",
                                         ((self._new_ids[w], w) for w in self.new_words))
            self._connection.commit()
        finally:
            self._connection.close()
        if self.previous is not None and not self.new_words:
            shutil.copyfile(self.previous / WORD_VECTORS_FILE, self.workspace / WORD_VECTORS_FILE)
            return
        if self.previous is not None:
            graph = faiss.read_index(str(self.previous / WORD_VECTORS_FILE))
        else:
            graph = faiss.index_factory(self.dimension, _HNSW_FACTORY, faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(graph).hnsw.efConstruction = _EF_CONSTRUCTION
        from tqdm.auto import tqdm

        with tqdm(total=len(self.new_words), unit="word", disable=not progress or not self.new_words,
                  desc="Encoding new vocabulary") as bar:
            for i in range(0, len(self.new_words), _ENCODE_BATCH):
                batch = self.new_words[i:i + _ENCODE_BATCH]
                graph.add(np.ascontiguousarray(encode(batch), dtype=np.float32))
                bar.update(len(batch))
        faiss.write_index(graph, str(self.workspace / WORD_VECTORS_FILE))


def store_neighbours(folder: Path, in_use: np.ndarray, whole_words: WholeWords | None, progress: bool = False) -> None:
    """Find the neighbours of every vocabulary word, and of the encoder's whole words the
    vocabulary lacks, and store them in ``folder`` (:mod:`qa.neighbour_table`).

    They are searched exactly as a query searches them (same graph, same vectors, same
    beam), with every core; a whole word's vector is the table's instead of a fresh encoding.
    """
    from tqdm.auto import tqdm

    from .embedding import usable_cores

    graph = faiss.read_index(str(folder / WORD_VECTORS_FILE))
    faiss.downcast_index(graph).hnsw.efSearch = _EF_SEARCH
    faiss.omp_set_num_threads(usable_cores())
    extra_words = whole_words.words if whole_words is not None else []
    vocabulary = sqlite3.connect(folder / VOCABULARY_FILE)

    def batches() -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        with tqdm(total=graph.ntotal + len(extra_words), unit="word", disable=not progress,
                  desc="Finding translations of known words") as bar:
            for start in range(0, graph.ntotal, _NEIGHBOUR_BATCH):
                rows = vocabulary.execute("SELECT id, word FROM words WHERE id >= ? AND id < ? ORDER BY id",
                                          (start, start + _NEIGHBOUR_BATCH)).fetchall()
                vectors = graph.reconstruct_batch(np.array([i for i, _ in rows], dtype=np.int64))
                yield [w for _, w in rows], *nearest_arrays(graph, vectors, in_use)
                bar.update(len(rows))
            for start in range(0, len(extra_words), _NEIGHBOUR_BATCH):
                words = extra_words[start:start + _NEIGHBOUR_BATCH]
                yield words, *nearest_arrays(graph, whole_words.vectors[start:start + len(words)], in_use)
                bar.update(len(words))

    try:
        neighbour_table.write(folder / NEIGHBOURS_FILE, batches())
    finally:
        vocabulary.close()
