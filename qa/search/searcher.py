"""Searching one snapshot: dense candidates from the vector index, re-ranked by the hybrid
features (:mod:`qa.search.ranking`), turned into :class:`~qa.types.Hit`\\ s.

Everything here reads the generation through the store protocols only
(:mod:`qa.store.protocols`). ``timings``, where a function takes it, is filled with the
seconds each stage took: the supported way to see where a query's time goes
(:meth:`qa.api.Index.trace`).
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from ..store.protocols import Neighbours
from ..text import lexical
from ..types import Hit
from . import ranking as hybrid
from .ranking import QueryTerms, Ranking
from .snapshot import Snapshot
from .translations import Translations, WordVectors, encode_with_neighbours


@dataclass(frozen=True)
class Reading:
    """One reading of a question: its vector, its lexical terms and its re-ranked candidates."""

    vector: np.ndarray
    terms: QueryTerms
    ranking: Ranking
    words: list[str]  # the distinct words whose translations ``terms`` holds, in group order
    neighbours: dict[str, Neighbours]  # each word's nearest vocabulary words in this generation
    candidates: tuple[np.ndarray, np.ndarray]  # the vector index's (rows, cosines) before re-ranking


def read(snapshot: Snapshot, word_vectors: WordVectors, readings: list[str], k: int,
         timings: dict[str, float] | None = None) -> list[Reading]:
    """Encode the readings and their unknown words in one call, search, then re-rank each."""
    words = [sorted(set(lexical.words(r))) for r in readings]
    distinct = sorted(set().union(*words))
    vectors, near = encode_with_neighbours(snapshot, word_vectors, readings, distinct, timings)
    started = perf_counter()
    dense, rows = snapshot.generation.vectors.search(vectors, max(k, hybrid.CANDIDATES))
    searched = perf_counter()
    result = []
    for i, reading in enumerate(readings):
        terms = hybrid.query_terms(reading, Translations.of([near[w] for w in words[i]]))
        found_rows = rows[i] >= 0
        candidates = (rows[i][found_rows].astype(np.int64), dense[i][found_rows])
        ranking = hybrid.rank(snapshot.generation.rows, vectors[i], terms, *candidates)
        result.append(Reading(vectors[i], terms, ranking, words[i], {w: near[w] for w in words[i]}, candidates))
    if timings is not None:
        timings["vector search"] = timings.get("vector search", 0.0) + searched - started
        timings["re-ranking"] = timings.get("re-ranking", 0.0) + perf_counter() - searched
    return result


def dense_candidates(snapshot: Snapshot, vector: np.ndarray, k: int,
                     timings: dict[str, float] | None = None) -> list[tuple[int, float]]:
    """The ``k`` chunk rows nearest ``vector`` with their cosines, best first."""
    started = perf_counter()
    scores, rows = snapshot.generation.vectors.search(vector[None, :], k)
    if timings is not None:
        timings["vector search"] = timings.get("vector search", 0.0) + perf_counter() - started
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]


def hits(snapshot: Snapshot, ranking: Ranking, k: int, timings: dict[str, float] | None = None) -> list[Hit]:
    """The ranking's first ``k`` chunks as hits."""
    return hits_of(snapshot, list(zip(ranking.rows[:k].tolist(), ranking.scores[:k].tolist())), timings)


def hits_of(snapshot: Snapshot, pairs: list[tuple[int, float]], timings: dict[str, float] | None = None) -> list[Hit]:
    """(row, score) pairs as hits, the chunks read in one call."""
    started = perf_counter()
    stored = snapshot.generation.chunks.get([r for r, _ in pairs])
    sources = snapshot.manifest.documents.sources_of({c.doc_id for c in stored})
    found = [Hit.of(c, sources[c.doc_id][0], score) for c, (_, score) in zip(stored, pairs)]
    if timings is not None:
        timings["passages"] = timings.get("passages", 0.0) + perf_counter() - started
    return found


def piece_cosines_by_place(snapshot: Snapshot, ranking: Ranking) -> dict[tuple[int, int, int], float]:
    """(position in the ranking, start, end in the chunk) of each candidate piece -> its cosine."""
    spans = snapshot.generation.rows.piece_spans_of(ranking.piece_rows).tolist()
    return {(int(p), int(a), int(b)): float(c) for p, (a, b), c in
            zip(ranking.piece_owner.tolist(), spans, ranking.piece_cosines.tolist())}


def sentences_of(snapshot: Snapshot, hit_rows: list[int], vector: np.ndarray) -> list[list[tuple[int, int, float]]]:
    """Per chunk row, its sentence pieces as (start, end) in the document and their cosine
    with ``vector``, in the chunk's order."""
    rows = snapshot.generation.rows
    result: list[list[tuple[int, int, float]]] = []
    for row in hit_rows:
        pieces, _ = rows.pieces(np.array([row], dtype=np.int64))
        if len(pieces) == 0:
            result.append([])
            continue
        (chunk,) = snapshot.generation.chunks.get([row])
        cosines = rows.piece_vectors_of(pieces) @ vector
        result.append([(chunk.start + int(a), chunk.start + int(b), float(c))
                       for (a, b), c in zip(rows.piece_spans_of(pieces).tolist(), cosines.tolist())])
    return result
