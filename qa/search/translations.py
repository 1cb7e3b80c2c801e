"""Question words and their translations: the vocabulary words standing in for them.

A question word's neighbours in this generation's vocabulary come from, in order: the
snapshot's cache, the table the build stored (:mod:`qa.store.neighbour_table`), or a search
of the word graph with the word's vector, which comes from the encoder-wide cache, the
vocabulary, or the encoder (once per word). The question's own vectors are encoded in the
same call as its unknown words. The caches change speed, never results.
"""

from __future__ import annotations

from time import perf_counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..store.protocols import MIN_TRANSLATION_COSINE, Neighbours
from ..recently_used import RecentlyUsed

if TYPE_CHECKING:
    from ..encode.base import Embedder
    from .snapshot import Snapshot


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


class WordVectors:
    """Vectors of question words, cached per encoder (a rebuild with another encoder empties
    it); safe to share between threads."""

    def __init__(self) -> None:
        self._cache = RecentlyUsed()
        self._of: str | None = None

    def cache(self, embedder: Embedder) -> RecentlyUsed:
        """The query-word vectors of ``embedder``, emptied if the index changed encoder."""
        if self._of != embedder.id:
            self._cache, self._of = RecentlyUsed(), embedder.id
        return self._cache

    def of(self, snapshot: Snapshot, words: list[str]) -> np.ndarray:
        """Vectors of question words: cached, the vocabulary's, or encoded (once per word)."""
        cache = self.cache(snapshot.embedder)
        vocabulary = snapshot.generation.vocabulary
        vectors_of = cache.get(words)
        missing = [w for w in words if w not in vectors_of]
        in_vocabulary = vocabulary.ids(missing) if missing else {}
        vectors_of.update(zip(in_vocabulary, vocabulary.vectors(list(in_vocabulary.values()))))
        unknown = [w for w in missing if w not in in_vocabulary]
        if unknown:
            vectors_of.update(zip(unknown, snapshot.embedder.encode_queries(unknown)))
        cache.put(missing, [vectors_of[w] for w in missing])
        if not words:
            return np.empty((0, snapshot.embedder.dimension), dtype=np.float32)
        return np.array([vectors_of[w] for w in words], dtype=np.float32)


def encode_with_neighbours(snapshot: Snapshot, word_vectors: WordVectors, readings: list[str], words: list[str],
                           timings: dict[str, float] | None = None) -> tuple[np.ndarray, dict[str, Neighbours]]:
    """The readings' vectors, and each of ``words``' neighbours in this generation.

    Encodes the readings and the unknown words in one call. A word needs a vector only if
    its neighbours are neither cached nor stored by the build (most words are:
    :mod:`qa.store.neighbour_table`). ``timings`` gets the seconds spent encoding and
    translating.
    """
    started = perf_counter()
    vocabulary, in_use = snapshot.generation.vocabulary, snapshot.generation.rows.words.df
    near = snapshot.neighbours.get(words)
    stored = vocabulary.stored_neighbours([w for w in words if w not in near], in_use=in_use)
    snapshot.neighbours.put(list(stored), list(stored.values()))
    near.update(stored)
    missing = [w for w in words if w not in near]
    cache = word_vectors.cache(snapshot.embedder)
    vectors_of = cache.get(missing)
    looked_up = [w for w in missing if w not in vectors_of]
    # a build that stored neighbours stored every vocabulary word's: the rest are new words
    in_vocabulary = vocabulary.ids(looked_up) if looked_up and not vocabulary.stores_neighbours else {}
    vectors_of.update(zip(in_vocabulary, vocabulary.vectors(list(in_vocabulary.values()))))
    unknown = [w for w in looked_up if w not in in_vocabulary]
    encoding = perf_counter()
    vectors = snapshot.embedder.encode_queries(readings + unknown)
    encoded = perf_counter()
    vectors_of.update(zip(unknown, vectors[len(readings):]))
    cache.put(looked_up, [vectors_of[w] for w in looked_up])
    if missing:
        found = vocabulary.neighbours(np.array([vectors_of[w] for w in missing], dtype=np.float32), in_use=in_use)
        snapshot.neighbours.put(missing, found)
        near.update(zip(missing, found))
    if timings is not None:
        timings["encode"] = timings.get("encode", 0.0) + encoded - encoding
        timings["translations"] = timings.get("translations", 0.0) + (perf_counter() - started) - (encoded - encoding)
    return vectors[:len(readings)], near
