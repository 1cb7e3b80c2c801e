"""What a storage backend provides: the protocols search and build are written against.

A query process runs entirely on these four parts of an opened generation, so a second
backend (a vector engine holding the chunks, their rows and the word tables) plugs in by
implementing them, without touching :mod:`qa.search` or :mod:`qa.build`:

1. :class:`VectorIndex`: nearest chunk rows of query vectors (optionally among some rows
   only: a document filter), its size and dimension, and stored vectors by row for exact
   re-scoring and for carrying rows into the next generation.
2. :class:`ChunkStore`: chunk text and provenance (source document, content id, offsets,
   pages and spans) by row, several rows per call; and :class:`RankingRowStore`, the
   per-chunk rows the hybrid re-ranking reads for its ~50 candidates (sentence-piece vectors
   and spans, n-gram and word term rows, language profiles, document frequencies).
3. :class:`VocabularyStore`: word -> id, id -> word, word vectors, and each word's nearest
   vocabulary words (stored by the build, or searched).
4. :class:`Generations` and :class:`Generation`: the lifecycle of immutable generations
   (open the current one under a lease that keeps writers from removing it, tell when a
   newer one is current, its manifest: documents and statistics, its size).

A build writes a new generation through a :class:`GenerationWriter`, which makes it current
in one step (:meth:`GenerationWriter.commit`), so a reader never sees half of an update.

The local implementation is a folder of files (:mod:`qa.store.local`): FAISS for vectors
(:mod:`qa.store.vectors`), SQLite for chunks and words, NumPy row files for ranking rows, in
immutable segments (:mod:`qa.store.segments`). Row numbers are the chunk ids shared by all
parts: row ``i`` of the vector index is row ``i`` of the chunk store and of the ranking rows.
They need not be consecutive: a row deleted by an update keeps its number, and no search,
``of_documents`` or count returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..text.lexical import Collection, Matches
    from ..types import Chunk
    from .manifest import Manifest

# A query word's nearest vocabulary words, and how close a word must be to count as a
# translation (tuned on the tuning half of XQuAD-R: 3 and 0.6 beat 5/10 and 0.7/0.8).
TRANSLATIONS_PER_WORD = 3
MIN_TRANSLATION_COSINE = 0.6
# How much of a piece's neighbours its window vector adds (v_i + 0.5 (v_i-1 + v_i+1)).
WINDOW_NEIGHBOUR = 0.5


def window_sums(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Per piece, its window: v_i + WINDOW_NEIGHBOUR (v_i-1 + v_i+1), the neighbours taken
    within the same chunk (``owner``). The one definition: a build stores the norms of the
    piece vectors' windows, a query sums its cosines the same way, so that their ratio is
    the cosine with the window vector."""
    window = values.copy()
    if len(values) > 1:
        same = owner[1:] == owner[:-1]
        window[1:][same] += WINDOW_NEIGHBOUR * values[:-1][same]
        window[:-1][same] += WINDOW_NEIGHBOUR * values[1:][same]
    return window


@dataclass(frozen=True)
class Neighbours:
    """A query word's nearest vocabulary words (ids) and their cosines, best first."""

    ids: tuple[int, ...]
    cosines: tuple[float, ...]


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product (cosine) search over the chunk vectors of one generation."""

    @property
    def kind(self) -> str:
        """The kind of index (``flat``, ``ivf-sq8``, or a backend's own)."""

    @property
    def size(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) per query row, best first; rows are -1 where there are
        fewer. ``among`` (sorted chunk rows) restricts the search to those rows."""

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows`` (float32), in that order."""

    def describe(self) -> dict[str, Any]:
        """The manifest's ``vector_index`` entry: what to reopen it with."""


@runtime_checkable
class ChunkStore(Protocol):
    """Chunk text and provenance by row."""

    def count(self) -> int: ...

    def get(self, rows: Sequence[int]) -> list[Chunk]:
        """The chunks at ``rows``, in the order asked (one round trip)."""

    def of_documents(self, doc_ids: Iterable[str]) -> tuple[np.ndarray, list[Chunk]]:
        """Every chunk of the given documents (content ids) and their rows, in row order."""

    def places_by_document(self) -> dict[str, str]:
        """Content id -> how many pages, slides, sheets or chapters it has ("12 pages")."""


@runtime_checkable
class RankingRowStore(Protocol):
    """The per-chunk rows hybrid re-ranking and evidence choice read (:mod:`qa.store.ranking_rows`).

    Sentence pieces are numbered across the generation ("piece rows"); a chunk's pieces are
    consecutive.
    """

    rows: int
    ngrams: Collection  # n-gram document frequencies and lengths of the whole generation
    words: Collection  # vocabulary-word document frequencies (``words.df[id] > 0``: in use)

    @property
    def piece_total(self) -> int:
        """Sentence pieces in the generation."""

    def pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(piece rows of ``rows`` concatenated, the position in ``rows`` owning each)."""

    def piece_vectors_of(self, pieces: np.ndarray) -> np.ndarray: ...

    def piece_cosines(self, pieces: np.ndarray, vector: np.ndarray) -> np.ndarray: ...

    def piece_spans_of(self, pieces: np.ndarray) -> np.ndarray:
        """int [pieces, 2]: each piece's offsets in its chunk."""

    def window_norms_of(self, pieces: np.ndarray) -> np.ndarray: ...

    def ngram_matches(self, rows: np.ndarray, ids: np.ndarray) -> Matches:
        """The entries of the rows' n-gram term rows whose id is in ``ids`` (sorted)."""

    def word_matches(self, rows: np.ndarray, ids: np.ndarray) -> Matches: ...

    def ngram_lengths_of(self, rows: np.ndarray) -> np.ndarray: ...

    def word_lengths_of(self, rows: np.ndarray) -> np.ndarray: ...

    def profiles_of(self, rows: np.ndarray) -> np.ndarray:
        """uint32 [rows, PROFILE_TOKENS]: each row's document's language profile."""

    def word_ids_of(self, row: int) -> np.ndarray:
        """The vocabulary ids of the words of chunk ``row``."""


@runtime_checkable
class VocabularyStore(Protocol):
    """The translation channel's word tables (:mod:`qa.store.vocabulary`)."""

    @property
    def size(self) -> int: ...

    @property
    def stores_neighbours(self) -> bool:
        """Whether the build stored every vocabulary word's neighbours."""

    def ids(self, words: Sequence[str]) -> dict[str, int]: ...

    def words(self, ids: Sequence[int]) -> dict[int, str]: ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray: ...

    def neighbours(self, word_vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
        """Each vector's nearest vocabulary words in use (searched)."""

    def stored_neighbours(self, words: Sequence[str], in_use: np.ndarray) -> dict[str, Neighbours]:
        """The neighbours the build stored for those ``words`` it knew, among those in use."""


@runtime_checkable
class Lease(Protocol):
    """Keeps a generation from being removed while a reader uses it."""

    def release(self) -> None: ...


@runtime_checkable
class Generation(Protocol):
    """One opened, immutable generation: everything a query reads."""

    name: str
    manifest: Manifest
    vectors: VectorIndex
    chunks: ChunkStore
    rows: RankingRowStore
    vocabulary: VocabularyStore
    lease: Lease


@runtime_checkable
class Generations(Protocol):
    """An index's generations: which one is current, opening it, its size."""

    @property
    def location(self) -> str:
        """Where the index lives (a folder path, or a backend's URI), for messages."""

    def current_generation(self) -> str | None:
        """The current generation's name (None if there is no index): cheap, asked before
        every query to follow rebuilds."""

    def open(self) -> Generation:
        """The current generation, verified and leased (:class:`~qa.errors.IndexNotFoundError`
        if there is none, :class:`~qa.errors.IndexCorruptError` if it is damaged)."""

    def size_bytes(self, generation: str) -> int: ...


@runtime_checkable
class GenerationWriter(Protocol):
    """Where a build writes one new generation, in order; invisible to readers until
    :meth:`commit`, and :meth:`abort` leaves the previous generation as it was."""

    def word_ids(self, words: Iterable[str]) -> dict[str, int]:
        """Vocabulary ids of ``words``; words never seen get new ids (appended)."""

    def keep(self, previous: Generation, rows: np.ndarray) -> None:
        """Carry the previous generation's ``rows`` (vectors, chunks and ranking rows) over;
        its other rows are gone. How is the writer's: the local one links their segments."""

    def add(self, chunk_vectors: np.ndarray, rows: Any) -> None:
        """Append a batch of new chunks: their vectors and ranking rows (:class:`~qa.store.ranking_rows.NewRows`)."""

    def finish(self, chunks: Iterable[Chunk], encode_words, word_table, *, requested_index: str | None,
               previous: Generation | None, progress: bool, step) -> int:
        """Write the rest, in order: the vocabulary's new words, the chunk table, the
        vector index, the ranking rows and the stored translations; returns the number of
        words whose translations were searched. ``chunks`` are the chunks given to :meth:`add`,
        in that order (rows numbered from 0): the kept ones were named by :meth:`keep`."""

    def commit(self, manifest: Manifest) -> str:
        """Seal the generation with ``manifest`` and make it current; returns its name."""

    def abort(self) -> None: ...
