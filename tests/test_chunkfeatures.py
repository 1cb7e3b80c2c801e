"""Per-row artifacts of hybrid retrieval across incremental builds: carried over, never re-encoded."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import qa
from qa.text import lexical
from qa.store.local import LocalGenerations
from qa.store.ranking_rows import SegmentRows
from qa.encode.usem3 import UniversalSentenceEncoder
from qa.encode.models import load_embedder
from qa.errors import IndexCorruptError
from qa.store.folder import IndexDirectory
from qa.encode.base import word_table

from test_indexing import NEW_DOC


def live(index_dir):
    generation = LocalGenerations(index_dir).open()
    generation.lease.release()
    return generation.rows, generation.vocabulary


def vocabulary_words(vocabulary):
    return vocabulary.words(range(vocabulary.size))


def test_stored_piece_vectors_read_back_as_unit_vectors(seed_index):
    # the stored pieces of a real index (int8 codes, qa.store.codecs; their round trip is
    # tested in test_codecs) read back as unit vectors, and their cosines with a question
    # are those of the vectors read back
    features, _ = live(seed_index)
    pieces = np.arange(features.piece_total)
    stored = features.piece_vectors_of(pieces)
    assert stored.dtype == np.float32 and np.allclose(np.linalg.norm(stored, axis=1), 1, atol=2e-3)
    question = load_embedder(None).encode_queries(["Who supplied drones to Russia?"])[0]
    assert np.allclose(features.piece_cosines(pieces, question), stored @ question, atol=1e-5)


def test_an_added_document_appends_rows_and_encodes_only_new_words(seeds_copy, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    qa.build_index(seeds_copy, index_dir, progress=False)
    before, before_vocabulary = live(index_dir)
    known_words = set(vocabulary_words(before_vocabulary).values())

    encoded = []
    real_encode = UniversalSentenceEncoder.encode_queries
    monkeypatch.setattr(UniversalSentenceEncoder, "encode_queries",
                        lambda self, texts: encoded.extend(texts) or real_encode(self, texts))
    (seeds_copy / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    qa.build_index(seeds_copy, index_dir, progress=False)
    after, after_vocabulary = live(index_dir)

    new_words = set(lexical.words(NEW_DOC)) - known_words
    table = set(word_table(load_embedder(None)).words)
    assert new_words & table and new_words - table
    assert sorted(encoded) == sorted(new_words - table)  # known words reused, the table's looked up
    assert new_words <= set(vocabulary_words(after_vocabulary).values())
    assert after.rows > before.rows
    # a small index: the update merged its rows into one segment, the kept rows first
    (before_rows,), (after_rows,) = before.segments, after.segments
    pieces = int(before_rows.piece_ptr[-1])
    for name in ("piece_ptr", "ngram_ptr", "word_ptr", "ngram_lengths", "word_lengths", "profile_ids"):
        assert np.array_equal(getattr(after_rows, name)[:len(getattr(before_rows, name))], getattr(before_rows, name)), name
    for name in ("piece_vectors", "piece_spans", "piece_window_norms"):
        assert np.array_equal(getattr(after_rows, name)[:pieces], getattr(before_rows, name)), name
    for name in ("ngram_terms", "word_terms"):
        assert np.array_equal(getattr(after_rows, name)[:len(getattr(before_rows, name))], getattr(before_rows, name)), name
    assert vocabulary_words(after_vocabulary).items() >= vocabulary_words(before_vocabulary).items()  # ids stable

    # global statistics equal those of a build from scratch
    qa.build_index(seeds_copy, tmp_path / "scratch", progress=False)
    scratch, scratch_vocabulary = live(tmp_path / "scratch")
    assert np.array_equal(after.ngrams.df, scratch.ngrams.df)
    assert (after.words.rows, after.words.total_length) == (scratch.words.rows, scratch.words.total_length)
    by_word = lambda features, vocabulary: {w: int(features.words.df[i]) for i, w in vocabulary_words(vocabulary).items()}
    assert by_word(after, after_vocabulary) == by_word(scratch, scratch_vocabulary)

    # removing it again subtracts its frequencies
    (seeds_copy / "valparaiso.txt").unlink()
    qa.build_index(seeds_copy, index_dir, progress=False)
    removed, _ = live(index_dir)
    assert np.array_equal(removed.ngrams.df, before.ngrams.df)
    assert np.array_equal(removed.words.df[:before_vocabulary.size], before.words.df)
    assert not removed.words.df[before_vocabulary.size:].any()
    assert np.array_equal(removed.segments[-1].piece_vectors, before_rows.piece_vectors)


def test_ragged_files_that_disagree_with_their_pointers_are_named(seed_index, tmp_path):
    folder = tmp_path / "segment"
    directory = IndexDirectory(seed_index)
    generation = directory.generation_path(directory.current_generation())
    shutil.copytree(next(generation.glob("seg-*")), folder)
    SegmentRows(folder)  # consistent as built
    terms = np.load(folder / "ngram_terms.npy")
    np.save(folder / "ngram_terms.npy", terms[:-1], allow_pickle=False)  # a valid file, one entry short
    with pytest.raises(IndexCorruptError, match="ngram_terms.*qa index --rebuild"):
        SegmentRows(folder)
