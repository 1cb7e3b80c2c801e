"""The index's vocabulary and its word vectors: the cross-lingual "translation" channel.

Every distinct word of the indexed chunks (see :func:`qa.text.lexical.words`) is encoded on its
own with the index's encoder and kept in an HNSW graph. At query time each query word is
replaced by its nearest vocabulary words (player -> jugador, season -> temporada), which
then score candidates with word BM25. No dictionary and no language is involved: the
encoder's cross-lingual space does the translating.

Word ids are stable and only ever appended, so an incremental build encodes only words the
index has never seen. The graph holds the words up to its last compaction; words added
since then (at most RECENT_WORDS_MAX) are kept as a small float16 matrix searched exactly,
so that an update leaves the graph, and every neighbour found in it, as it was. A query
word's neighbours are the graph's and the recent words' candidates merged
(:func:`word_candidates`), then those in use. Each build stores every known word's candidates
(:mod:`qa.build.neighbours`), so that most query words need no search at query time.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterable, Sequence

import faiss
import numpy as np

from ..errors import IndexCorruptError
from .links import link_or_copy
from .neighbour_table import NEIGHBOURS_FILE, NeighbourTable
from .protocols import MIN_TRANSLATION_COSINE, TRANSLATIONS_PER_WORD, Neighbours
from .sqlite import ReadOnlyDatabase, open_for_writing, rows_in

VOCABULARY_FILE = "vocabulary.sqlite"
WORD_VECTORS_FILE = "word_vectors.faiss"
RECENT_VECTORS_FILE = "word_vectors_recent.npy"
# HNSW graph: 32 links per node; vectors stored as float16 (half the memory, cosines
# within 1e-3 of float32).
_HNSW_FACTORY = "HNSW32,SQfp16"
_EF_CONSTRUCTION = 80
EF_SEARCH = 32
_SPARE_NEIGHBOURS = 3
# Candidates kept from each of the two parts (graph, recent words), and in all.
SEGMENT_CANDIDATES = TRANSLATIONS_PER_WORD + _SPARE_NEIGHBOURS
CANDIDATES = 2 * SEGMENT_CANDIDATES
# Words added since the graph was last rebuilt, searched exactly. Past this many, a build
# adds them to the graph and finds every word's neighbours again (about the cost every build
# had before); below it, a query with unknown words reads at most 4 MB of them (~0.3 ms).
RECENT_WORDS_MAX = 2048
# Float32 products within this of MIN_TRANSLATION_COSINE are computed again exactly
# (float64), so a cosine does not depend on how many vectors were multiplied at once.
_SCREEN_MARGIN = 1e-3
_ENCODE_BATCH = 512


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
        faiss.downcast_index(self._graph).hnsw.efSearch = EF_SEARCH
        self._recent = read_recent(folder, self._graph.d).astype(np.float32)  # at most 4 MB
        stored = folder / NEIGHBOURS_FILE
        self._stored = NeighbourTable(stored) if stored.exists() else None
        if self.size != self._graph.ntotal + len(self._recent):
            raise IndexCorruptError(f"{self.path} holds {self.size} words but {WORD_VECTORS_FILE} and "
                                    f"{RECENT_VECTORS_FILE} {self._graph.ntotal + len(self._recent)} vectors; "
                                    "run `qa index --rebuild`")

    @property
    def size(self) -> int:
        """Words in the vocabulary (ids are 0..size-1)."""
        return int(self._query("SELECT COUNT(*) FROM words")[0][0])

    def ids(self, words: Sequence[str]) -> dict[str, int]:
        """The ids of those ``words`` that are in the vocabulary."""
        return lookup_ids(self._query, words)

    def words(self, ids: Sequence[int]) -> dict[int, str]:
        """The words of vocabulary ids."""
        return dict(rows_in(self._query, "SELECT id, word FROM words WHERE id IN ({marks})", [int(i) for i in ids]))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of vocabulary words, in the order asked."""
        return word_vectors(self._graph, self._recent, np.asarray(ids, dtype=np.int64))

    def neighbours(self, word_vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
        """The TRANSLATIONS_PER_WORD nearest vocabulary words of each vector with a cosine of at
        least MIN_TRANSLATION_COSINE, among those that some chunk still contains (``in_use[id] >
        0``: document frequencies), searched in the graph and among the recent words.

        Ids are never reused, so the words of removed documents stay in the graph; a few
        spare candidates are kept so that they do not take a translation's place.
        """
        # One OpenMP thread for a query, as in the vector indexes' search (per calling thread).
        faiss.omp_set_num_threads(1)
        ids, cosines = word_candidates(self._graph, self._recent, word_vectors)
        return [in_use_neighbours(i, c, in_use) for i, c in zip(ids.tolist(), cosines.tolist())]

    @property
    def stores_neighbours(self) -> bool:
        """Whether the build stored the neighbours of every vocabulary word (indexes built
        before builds did so have none)."""
        return self._stored is not None

    def stored_neighbours(self, words: Sequence[str], in_use: np.ndarray) -> dict[str, Neighbours]:
        """The neighbours of those ``words`` the build knew (:mod:`qa.store.neighbour_table`), among
        the words in use: what :meth:`neighbours` finds for them. Empty for an index built
        before builds stored them."""
        if self._stored is None:
            return {}
        return {word: in_use_neighbours(near.ids, near.cosines, in_use) for word, near in self._stored.get(words).items()}


def in_use_neighbours(ids: Sequence[int], cosines: Sequence[float], in_use: np.ndarray) -> Neighbours:
    """The first TRANSLATIONS_PER_WORD candidates (best first, -1 for none) that some chunk
    contains: removed documents leave their words in the vocabulary with frequency 0."""
    kept_ids: list[int] = []
    kept_cosines: list[float] = []
    size = len(in_use)
    for word_id, cosine in zip(ids, cosines):
        if 0 <= word_id < size and in_use[word_id] > 0:
            kept_ids.append(word_id)
            kept_cosines.append(cosine)
            if len(kept_ids) == TRANSLATIONS_PER_WORD:
                break
    return Neighbours(tuple(kept_ids), tuple(kept_cosines))


def word_vectors(graph: faiss.Index, recent: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Vectors (float32) of word ids: the graph's below its size, the recent words' above."""
    vectors = np.empty((len(ids), graph.d), dtype=np.float32)
    in_graph = ids < graph.ntotal
    if in_graph.any():
        vectors[in_graph] = graph.reconstruct_batch(np.ascontiguousarray(ids[in_graph]))
    vectors[~in_graph] = recent[ids[~in_graph] - graph.ntotal]
    return vectors


def word_candidates(graph: faiss.Index, recent: np.ndarray, word_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's candidate neighbours as arrays [vectors, CANDIDATES] of word ids (best
    first, -1 after the last) and cosines: the graph's SEGMENT_CANDIDATES nearest (HNSW, as
    many OpenMP threads as the caller set) and the recent words' SEGMENT_CANDIDATES nearest
    (exact; ids follow the graph's), each kept from MIN_TRANSLATION_COSINE, merged by cosine.
    """
    vectors = np.ascontiguousarray(word_vectors, dtype=np.float32)
    n = len(vectors)
    ids = np.full((n, CANDIDATES), -1, dtype=np.int64)
    cosines = np.full((n, CANDIDATES), -np.inf, dtype=np.float32)
    if n and graph.ntotal:
        k = min(SEGMENT_CANDIDATES, graph.ntotal)
        cosines[:, :k], ids[:, :k] = graph.search(vectors, k)
    ids[:, SEGMENT_CANDIDATES:], cosines[:, SEGMENT_CANDIDATES:] = exact_candidates(recent, vectors, graph.ntotal)
    return merge_candidates(ids, cosines)


def exact_candidates(matrix: np.ndarray, vectors: np.ndarray, first_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's SEGMENT_CANDIDATES nearest rows of ``matrix`` (ids ``first_id`` + row) with
    a cosine of at least MIN_TRANSLATION_COSINE, as arrays [vectors, SEGMENT_CANDIDATES].

    A float32 product screens the pairs and the few near the threshold or above are computed
    again in float64: the same pair gets the same cosine however the vectors are batched.
    """
    n = len(vectors)
    ids = np.full((n, SEGMENT_CANDIDATES), -1, dtype=np.int64)
    cosines = np.full((n, SEGMENT_CANDIDATES), -np.inf, dtype=np.float32)
    if n == 0 or len(matrix) == 0:
        return ids, cosines
    rows, columns = np.nonzero(vectors @ matrix.T >= MIN_TRANSLATION_COSINE - _SCREEN_MARGIN)
    exact = np.einsum("ij,ij->i", vectors[rows].astype(np.float64), matrix[columns].astype(np.float64)).astype(np.float32)
    close = exact >= MIN_TRANSLATION_COSINE
    rows, columns, exact = rows[close], columns[close], exact[close]
    order = np.lexsort((columns, -exact, rows))  # by vector, then best first
    rows, columns, exact = rows[order], columns[order], exact[order]
    place = np.arange(len(rows)) - np.searchsorted(rows, rows)  # rank within its vector
    keep = place < SEGMENT_CANDIDATES
    ids[rows[keep], place[keep]] = columns[keep] + first_id
    cosines[rows[keep], place[keep]] = exact[keep]
    return ids, cosines


def merge_candidates(ids: np.ndarray, cosines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of candidates with those below MIN_TRANSLATION_COSINE dropped, sorted best first
    (ties by id), -1 and cosine 0 after the last."""
    ids, cosines = ids.copy(), cosines.copy()
    dropped = (ids < 0) | ~(cosines >= MIN_TRANSLATION_COSINE)
    ids[dropped], cosines[dropped] = -1, -np.inf
    order = np.lexsort((np.where(dropped, np.iinfo(np.int64).max, ids), -cosines), axis=-1)
    ids, cosines = np.take_along_axis(ids, order, axis=1), np.take_along_axis(cosines, order, axis=1)
    cosines[ids < 0] = 0.0
    return ids, cosines


def read_recent(folder: Path, dimension: int) -> np.ndarray:
    """The float16 vectors of the words added since the graph was built (none in a generation
    written before qa kept them apart)."""
    path = folder / RECENT_VECTORS_FILE
    if not path.exists():
        return np.empty((0, dimension), dtype=np.float16)
    try:
        recent = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc}; run `qa index --rebuild`") from exc
    if recent.dtype != np.float16 or recent.ndim != 2 or recent.shape[1] != dimension:
        raise IndexCorruptError(f"{path} holds {recent.dtype} {recent.shape}, not float16 rows of {dimension}; "
                                "run `qa index --rebuild`")
    return recent


def lookup_ids(query: Callable[[str, Sequence], list[tuple]], words: Sequence[str]) -> dict[str, int]:
    """The ids of those ``words`` that the vocabulary table behind ``query`` holds."""
    return dict(rows_in(query, "SELECT word, id FROM words WHERE word IN ({marks})", words))


class VocabularyBuilder:
    """Writes a generation's vocabulary: the previous one plus the words new chunks bring.

    Only the new words are encoded. They join the recent words, and the previous graph is
    kept as it is (linked, not copied), until the recent words would pass RECENT_WORDS_MAX:
    then they are all added to a copy of the graph (:attr:`graph_changed`).
    """

    def __init__(self, workspace: Path, previous: Path | None, dimension: int) -> None:
        self.workspace = workspace
        self.previous = previous
        self.dimension = dimension
        path = workspace / VOCABULARY_FILE
        if previous is not None:
            shutil.copyfile(previous / VOCABULARY_FILE, path)
        self._connection = open_for_writing(path)
        self._connection.execute("CREATE TABLE IF NOT EXISTS words (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE)")
        self.size = int(self._connection.execute("SELECT COUNT(*) FROM words").fetchone()[0])
        self.new_words: list[str] = []
        self._new_ids: dict[str, int] = {}
        #: Whether this generation's graph differs from the previous one (a new index, or the
        #: recent words added to it): every stored neighbour must then be found again.
        self.graph_changed = previous is None

    def ids(self, words: Iterable[str]) -> dict[str, int]:
        """Ids for ``words``, assigning new ids (appended) to words not seen before."""
        words = set(words)
        known = lookup_ids(lambda sql, p: self._connection.execute(sql, p).fetchall(), sorted(words - self._new_ids.keys()))
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
        from tqdm.auto import tqdm

        new_vectors = np.empty((len(self.new_words), self.dimension), dtype=np.float16)
        with tqdm(total=len(self.new_words), unit="word", disable=not progress or not self.new_words,
                  desc="Encoding new vocabulary") as bar:
            for i in range(0, len(self.new_words), _ENCODE_BATCH):
                batch = self.new_words[i:i + _ENCODE_BATCH]
                new_vectors[i:i + len(batch)] = encode(batch)  # float16, as the graph stores them
                bar.update(len(batch))
        graph_file, recent_file = self.workspace / WORD_VECTORS_FILE, self.workspace / RECENT_VECTORS_FILE
        recent = new_vectors
        if self.previous is not None:
            recent = np.vstack([read_recent(self.previous, self.dimension), new_vectors])
            if len(recent) <= RECENT_WORDS_MAX:
                link_or_copy(self.previous / WORD_VECTORS_FILE, graph_file)
                np.save(recent_file, recent, allow_pickle=False)
                return
            graph = faiss.read_index(str(self.previous / WORD_VECTORS_FILE))
            self.graph_changed = True
        else:
            graph = faiss.index_factory(self.dimension, _HNSW_FACTORY, faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(graph).hnsw.efConstruction = _EF_CONSTRUCTION
        with tqdm(total=len(recent), unit="word", disable=not progress or len(recent) < _ENCODE_BATCH,
                  desc="Adding words to the graph") as bar:
            for i in range(0, len(recent), _ENCODE_BATCH):
                graph.add(recent[i:i + _ENCODE_BATCH].astype(np.float32))
                bar.update(min(_ENCODE_BATCH, len(recent) - i))
        faiss.write_index(graph, str(graph_file))
        np.save(recent_file, np.empty((0, self.dimension), dtype=np.float16), allow_pickle=False)


