"""A build's stored neighbours (:mod:`qa.store.neighbour_table`): found for every known word, or
updated for what the build changed.

A new index, or one whose graph the build changed (:attr:`qa.store.vocabulary.VocabularyBuilder.graph_changed`),
has every word searched: the vocabulary's and the encoder's whole words (:mod:`qa.encode.whole_words`).
Otherwise the graph is the previous generation's, so every stored row still holds for it,
and an update only has to account for the words it added, which join the recent words:

- each new word's candidates are searched, in the graph and among the recent words;
- a stored word gains a new word as a candidate only if their cosine reaches
  MIN_TRANSLATION_COSINE and it beats the word's recent candidates: one exact product of
  every stored word's vector with the new words finds those pairs, and only their rows change;
- removed documents change no row (rows are kept before the words out of use are left out).

So the stored rows are what searching every word again would give, at the cost of the new
words: tested against a full search after updates.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import faiss
import numpy as np

from ..store import neighbour_table
from ..store.neighbour_table import NEIGHBOURS_FILE
from ..store.vocabulary import (
    CANDIDATES,
    SEGMENT_CANDIDATES,
    VOCABULARY_FILE,
    WORD_VECTORS_FILE,
    EF_SEARCH,
    exact_candidates,
    lookup_ids,
    merge_candidates,
    read_recent,
    word_candidates,
    word_vectors,
)
from ..encode.whole_words import WholeWords

# Words searched, or stored words compared with the new ones, at once: bounds the memory.
_BATCH = 4096


@dataclass(frozen=True)
class NeighbourUpdate:
    """What a build did to the stored neighbours: ``searched`` words had theirs searched,
    ``updated`` stored words gained a new word among theirs; ``full``: every word was searched."""

    searched: int
    updated: int
    full: bool


def store_neighbours(folder: Path, whole_words: WholeWords | None, previous: Path | None = None,
                     progress: bool = False) -> NeighbourUpdate:
    """Write ``folder``'s stored neighbours: updated from ``previous`` (the generation whose
    graph ``folder`` shares, or None) where its table can be, else found for every word."""
    from ..machine import usable_cores

    # mapped, not read: an update reads only the vectors it compares and the links it follows
    graph = faiss.read_index(str(folder / WORD_VECTORS_FILE), faiss.IO_FLAG_MMAP_IFC)
    faiss.downcast_index(graph).hnsw.efSearch = EF_SEARCH
    recent = read_recent(folder, graph.d).astype(np.float32)
    built_with = whole_words.digest if whole_words is not None else "none"
    vocabulary = sqlite3.connect(folder / VOCABULARY_FILE)
    try:
        if previous is not None and neighbour_table.whole_words_of(previous / NEIGHBOURS_FILE) == built_with:
            # a few searches: one thread (OpenMP threads spin-wait for each other on a busy machine)
            faiss.omp_set_num_threads(1)
            return _update(folder, previous, graph, recent, vocabulary, whole_words, progress)
        faiss.omp_set_num_threads(usable_cores())
        return _search_all(folder, graph, recent, vocabulary, whole_words, built_with, progress)
    finally:
        vocabulary.close()


def _search_all(folder: Path, graph: faiss.Index, recent: np.ndarray, vocabulary: sqlite3.Connection,
                whole_words: WholeWords | None, built_with: str, progress: bool) -> NeighbourUpdate:
    from tqdm.auto import tqdm

    size = graph.ntotal + len(recent)
    extra_words = whole_words.words if whole_words is not None else []

    def batches() -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        with tqdm(total=size + len(extra_words), unit="word", disable=not progress,
                  desc="Finding translations of known words") as bar:
            for start in range(0, size, _BATCH):
                rows = vocabulary.execute("SELECT id, word FROM words WHERE id >= ? AND id < ? ORDER BY id",
                                          (start, start + _BATCH)).fetchall()
                vectors = word_vectors(graph, recent, np.array([i for i, _ in rows], dtype=np.int64))
                yield [w for _, w in rows], *word_candidates(graph, recent, vectors)
                bar.update(len(rows))
            for start in range(0, len(extra_words), _BATCH):
                words = extra_words[start:start + _BATCH]
                yield words, *word_candidates(graph, recent, whole_words.vectors[start:start + len(words)])
                bar.update(len(words))

    neighbour_table.write(folder / NEIGHBOURS_FILE, batches(), built_with)
    return NeighbourUpdate(searched=size + len(extra_words), updated=0, full=True)


def _update(folder: Path, previous: Path, graph: faiss.Index, recent: np.ndarray, vocabulary: sqlite3.Connection,
            whole_words: WholeWords | None, progress: bool) -> NeighbourUpdate:
    from tqdm.auto import tqdm

    size = graph.ntotal + len(recent)
    known = graph.ntotal + len(read_recent(previous, graph.d))  # the previous generation's words: same graph
    new_vectors = recent[known - graph.ntotal:]  # the words this build added: ids known..size-1
    shutil.copyfile(previous / NEIGHBOURS_FILE, folder / NEIGHBOURS_FILE)
    table = neighbour_table.TableUpdate(folder / NEIGHBOURS_FILE)
    updated = 0
    try:
        if len(new_vectors):
            new_words = [w for _, w in vocabulary.execute("SELECT id, word FROM words WHERE id >= ? ORDER BY id",
                                                          (known,)).fetchall()]
            table.put(new_words, *word_candidates(graph, recent, new_vectors))
            stored = _stored_words(vocabulary, known, graph, recent, whole_words)
            with tqdm(total=known + (len(whole_words.words) if whole_words else 0), unit="word", disable=not progress,
                      desc="Updating translations of known words") as bar:
                for words, vectors, whole in stored:
                    updated += _add_new_candidates(table, vocabulary, words, vectors, whole, new_vectors, known,
                                                   graph.ntotal)
                    bar.update(len(words))
        table.close()
    except BaseException:
        table.close()
        raise
    return NeighbourUpdate(searched=size - known, updated=updated, full=False)


def _stored_words(vocabulary: sqlite3.Connection, known: int, graph: faiss.Index, recent: np.ndarray,
                  whole_words: WholeWords | None) -> Iterator[tuple[list[str], np.ndarray, bool]]:
    """The previous table's words with their vectors, in batches: the vocabulary's first
    ``known`` words, then the whole words (flagged: those the vocabulary has are its rows)."""
    for start in range(0, known, _BATCH):
        rows = vocabulary.execute("SELECT id, word FROM words WHERE id >= ? AND id < ? ORDER BY id",
                                  (start, min(start + _BATCH, known))).fetchall()
        yield [w for _, w in rows], word_vectors(graph, recent, np.array([i for i, _ in rows], dtype=np.int64)), False
    if whole_words is None:
        return
    for start in range(0, len(whole_words.words), _BATCH):
        yield whole_words.words[start:start + _BATCH], whole_words.vectors32[start:start + _BATCH], True


def _add_new_candidates(table: neighbour_table.TableUpdate, vocabulary: sqlite3.Connection, words: list[str],
                        vectors: np.ndarray, whole_words: bool, new_vectors: np.ndarray, first_new_id: int,
                        graph_size: int) -> int:
    """Merge the new words into the stored rows of ``words`` where they are among the nearest
    recent words; returns how many rows changed."""
    new_ids, new_cosines = exact_candidates(new_vectors, vectors, first_new_id)
    changed = np.flatnonzero(new_ids[:, 0] >= 0)
    if whole_words and len(changed):  # a whole word the vocabulary has is stored as the vocabulary's word
        in_vocabulary = lookup_ids(lambda sql, p: vocabulary.execute(sql, p).fetchall(), [words[i] for i in changed])
        changed = np.array([i for i in changed.tolist() if words[i] not in in_vocabulary], dtype=np.int64)
    if not len(changed):
        return 0
    words = [words[i] for i in changed.tolist()]
    stored = table.get(words)
    ids = np.full((len(words), CANDIDATES + SEGMENT_CANDIDATES), -1, dtype=np.int64)
    cosines = np.zeros(ids.shape, dtype=np.float32)
    for row, word in enumerate(words):
        old_ids, old_cosines = stored.get(word, ((), ()))
        ids[row, :len(old_ids)], cosines[row, :len(old_ids)] = old_ids, old_cosines
    ids[:, CANDIDATES:], cosines[:, CANDIDATES:] = new_ids[changed], new_cosines[changed]
    ids, cosines = merge_candidates(ids, cosines)
    # the recent words keep their SEGMENT_CANDIDATES best, as a search among all of them would
    recent = ids >= graph_size
    beyond = recent & (np.cumsum(recent, axis=1) > SEGMENT_CANDIDATES)
    ids[beyond] = -1
    ids, cosines = merge_candidates(ids, cosines)
    table.put(words, ids[:, :CANDIDATES], cosines[:, :CANDIDATES])
    return len(words)
