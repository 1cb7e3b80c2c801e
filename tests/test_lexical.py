"""Language-agnostic lexical features: folding, hashed 4-grams, words, BM25 from raw counts."""

from __future__ import annotations

import numpy as np
import pytest

from qa.text import lexical
from qa.store.row_files import RowFile


def test_fold_lowercases_and_strips_accents():
    assert lexical.fold("Irán ÑANDÚ Straße") == "iran nandu straße"
    assert lexical.fold("Ελλάδα São Tomé") == "ελλαδα sao tome"


def test_ngrams_ignore_case_and_accents_but_not_word_boundaries():
    assert np.array_equal(lexical.ngram_buckets("Irán"), lexical.ngram_buckets("IRAN"))
    assert len(lexical.ngram_buckets("iran")) == 3  # _ira, iran, ran_
    assert len(lexical.ngram_buckets("ab")) == 1  # _ab_
    joined, apart = set(lexical.ngram_buckets("abcd").tolist()), set(lexical.ngram_buckets("ab cd").tolist())
    assert not joined & apart  # no 4-gram spans two words
    assert lexical.ngram_buckets("").size == 0 and lexical.ngram_buckets("a , b").size == 0
    assert lexical.ngram_buckets("drones").max() < lexical.NGRAM_BUCKETS


def test_words_keep_three_or_more_characters_and_drop_numbers():
    assert lexical.words("Rusia recibió 2023 drones de Irán en 3D") == ["rusia", "recibió", "drones", "irán"]
    assert lexical.tokens("Rusia y EE. UU.") == ["rusia", "ee", "uu"]
    assert lexical.words("id " + "x" * 33) == []  # identifiers and encoded data are not words


def test_words_keep_their_combining_marks():
    assert lexical.words("हिन्दी भाषा का इतिहास") == ["हिन्दी", "भाषा", "इतिहास"]
    assert lexical.words("مُحَمَّد رَسُولُ") == ["مُحَمَّد", "رَسُولُ"]


def test_scripts_without_spaces_become_character_bigrams():
    assert lexical.words("北京是首都") == ["北京", "京是", "是首", "首都"]
    assert lexical.tokens("我 住") == ["我", "住"]  # a lone character stays a token
    assert lexical.words("ไทยเป็น") == ["ไท", "ทย", "ยเ", "เป็", "ป็น"]  # vowel marks stay on their letter
    # a short query word matches inside a long run of the document
    assert set(lexical.ngram_buckets("北京").tolist()) <= set(lexical.ngram_buckets("我住在北京市").tolist())


def test_hashes_are_fixed_functions_not_pythons_per_process_hash():
    # stored in the index: they must not change between processes or versions
    assert lexical.token_hashes(["rusia"]).tolist() == [3253486389]  # CRC-32
    assert lexical.ngram_buckets("Irán").tolist() == [172934, 297951, 171752]  # _ira, iran, ran_


def bm25(tf, length, df, rows, average):
    idf = np.log(1 + (rows - df + 0.5) / (df + 0.5))
    return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))


def test_match_scores_are_bm25_from_raw_counts_and_global_frequencies():
    rows = [lexical.term_row(np.array(ids, dtype=np.uint32)) for ids in ([5, 5, 9], [9, 7], [1, 2, 3, 4])]
    ptr = np.cumsum([0] + [len(r.ids) for r in rows])
    ids = np.concatenate([r.ids for r in rows])
    counts = np.concatenate([r.counts for r in rows])
    lengths = np.array([r.length for r in rows])
    df = np.bincount(ids, minlength=lexical.NGRAM_BUCKETS)
    collection = lexical.Collection(rows=3, total_length=int(lengths.sum()), df=df)
    query = np.array([5, 9], dtype=np.uint32)
    found = lexical.matches(ptr, ids, counts, np.array([2, 0, 1]), query)
    scores = lexical.match_scores(found, 3, query, np.array([1.0, 2.0], np.float32), lengths[[2, 0, 1]], collection)
    average = lengths.mean()
    expected = [0.0, bm25(2, 3, 1, 3, average) + 2 * bm25(1, 3, 2, 3, average), 2 * bm25(1, 2, 2, 3, average)]
    assert scores == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("storage", ["memory-mapped", "read by row"])
def test_matches_find_exactly_the_entries_of_query_terms_in_row_order(storage, tmp_path):
    rng = np.random.default_rng(7)
    query = np.unique(rng.integers(0, lexical.NGRAM_BUCKETS, 40)).astype(np.uint32)
    # ids sharing a query id's low bits but not the id itself must pass the bitmap and be rejected
    decoys = query ^ np.uint32(1 << 18)
    rows = [np.unique(np.concatenate([rng.choice(query, 5), rng.choice(decoys, 5),
                                      rng.integers(0, lexical.NGRAM_BUCKETS, 200)])).astype(np.uint32)
            for _ in range(30)] + [np.empty(0, np.uint32)]
    ptr = np.cumsum([0] + [len(r) for r in rows])
    ids = np.concatenate(rows)
    counts = rng.integers(1, 9, len(ids)).astype(np.uint16)
    asked = np.array([30, 4, 17, 0, 4, 29])
    stored_ids, stored_counts = ids, counts
    if storage == "read by row":  # as a large index keeps them (qa.store.row_files)
        np.save(tmp_path / "ids.npy", ids)
        np.save(tmp_path / "counts.npy", counts)
        stored_ids, stored_counts = RowFile(tmp_path / "ids.npy"), RowFile(tmp_path / "counts.npy")
    found = lexical.matches(ptr, stored_ids, stored_counts, asked, query)
    expected = [(position, int(np.searchsorted(query, i)), int(c)) for position, row in enumerate(asked)
                for i, c in zip(ids[ptr[row]:ptr[row + 1]], counts[ptr[row]:ptr[row + 1]]) if i in set(query.tolist())]
    assert list(zip(found.owner.tolist(), found.term.tolist(), found.counts.tolist())) == expected
    assert len(expected) > 20
    assert len(lexical.matches(ptr, stored_ids, stored_counts, asked, query[:0]).term) == 0
