"""Language-agnostic lexical features: hashed character 4-grams, words, BM25.

No stop lists and no stemmers: character 4-grams of accent-folded words match inflected and
compound forms in any alphabetic script, and BM25's idf discounts function words by their
document frequency. Segmentation goes by Unicode script, never by language: a word is a run
of word characters with their combining marks (Devanagari, Thai and vowelled Arabic keep
their words whole), and scripts written without spaces between words (Han, kana, Thai,
Lao, Khmer, Myanmar) are cut into overlapping character bigrams, the usual unit of CJK
search engines, instead of whole clauses. 4-grams are feature-hashed into :data:`NGRAM_BUCKETS` columns, so an
index never keeps a vocabulary of n-grams; words (for the translation channel) get ids from
the index's vocabulary (:mod:`qa.store.vocabulary`).

Rows store raw term frequencies and the index stores document frequencies, so idf and the
length normalisation are computed at query time from global statistics: an incremental
build adds and subtracts frequencies instead of rewriting every row's weights.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import regex

# Lucene's BM25 parameters; tuned values in the literature sit close to these for passages.
BM25_K1 = 1.2
BM25_B = 0.75
NGRAM_ORDER = 4
NGRAM_BUCKET_BITS = 20
NGRAM_BUCKETS = 1 << NGRAM_BUCKET_BITS
# A word must have this many characters to enter the vocabulary: shorter ones are mostly
# function words or abbreviations whose translations are noise.
MIN_WORD_CHARS = 3
# Longer "words" are identifiers, URLs or encoded data: never worth a vocabulary vector.
MAX_WORD_CHARS = 32

_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
# A run of an unspaced script, or a word: word characters and marks of the other scripts.
_CHARACTER = regex.compile(r"\X")  # a character with its combining marks
_NEEDS_SCRIPTS = regex.compile(rf"[\p{{M}}{_UNSPACED}]")
_PLAIN_WORD = re.compile(r"\w+")
_SEGMENT = regex.compile(rf"(?P<unspaced>[{_UNSPACED}][{_UNSPACED}\p{{M}}]*)|[[\w\p{{M}}]--[{_UNSPACED}]]+", regex.V1)
_PAD = "_"
_SEPARATOR = "\x00"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
# Low bits of term ids in the bitmap that prefilters matches: 16 KB, cache-resident.
_FILTER_BITS = 14
_FILTER_MASK = np.uint32((1 << _FILTER_BITS) - 1)


def fold(text: str) -> str:
    """Lowercased, with accents and other combining marks removed ("Irán" -> "iran")."""
    text = text.lower()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFD", text)
    # Only the text's own distinct characters are looked up: cheaper than a table of all
    # of Unicode's combining marks, which would take 60 ms to build in every process.
    marks = {ord(c): None for c in set(text) if c > "\x7f" and unicodedata.category(c) == "Mn"}
    return text.translate(marks) if marks else text


def _segments(text: str) -> tuple[list[str], list[str]]:
    """The words of ``text``, and the bigrams of its unspaced-script runs (a one-character
    run stays whole)."""
    if _NEEDS_SCRIPTS.search(text) is None:  # most text: one C-level findall
        return _PLAIN_WORD.findall(text), []
    words: list[str] = []
    bigrams: list[str] = []
    for match in _SEGMENT.finditer(text):
        if match.group("unspaced") is None:
            words.append(match.group())
            continue
        characters = _CHARACTER.findall(match.group())  # Thai vowels are marks: keep them on
        if len(characters) == 1:
            bigrams.append(characters[0])
        bigrams.extend("".join(characters[i:i + 2]) for i in range(len(characters) - 1))
    return words, bigrams


def tokens(text: str) -> list[str]:
    """Lowercased tokens (for language profiles): words of two or more characters, bigrams."""
    words, bigrams = _segments(text.lower())
    return [w for w in words if len(w) >= 2] + bigrams


def words(text: str) -> list[str]:
    """Lowercased vocabulary words: words of MIN_WORD_CHARS to MAX_WORD_CHARS characters that
    are not all digits, and the bigrams of unspaced scripts."""
    found, bigrams = _segments(text.lower())
    return [w for w in found if MIN_WORD_CHARS <= len(w) <= MAX_WORD_CHARS and not w.isdigit()] + bigrams


def token_hashes(items: Iterable[str]) -> np.ndarray:
    """Stable 32-bit hashes of tokens (CRC-32 of UTF-8): the same in every process."""
    return np.fromiter((zlib.crc32(t.encode("utf-8")) for t in items), dtype=np.uint32)


def ngram_buckets(text: str) -> np.ndarray:
    """The hashed 4-grams of ``text``'s folded words, each word padded with ``_``, in order.

    Vectorised over code points: the padded words are joined by a separator, every window
    of four code points is hashed, and windows that cross a word boundary are dropped.
    """
    found = tokens(fold(text))
    if not found:
        return np.empty(0, dtype=np.uint32)
    joined = _SEPARATOR.join(f"{_PAD}{w}{_PAD}" for w in found)
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(points) - NGRAM_ORDER + 1
    h = points[:n].copy()
    inside = points[:n] != 0
    for i in range(1, NGRAM_ORDER):
        h *= _MIX
        h += points[i:i + n]
        inside &= points[i:i + n] != 0
    h = h[inside]
    h ^= h >> np.uint64(31)
    h *= _MIX2
    h ^= h >> np.uint64(29)
    return (h >> np.uint64(64 - NGRAM_BUCKET_BITS)).astype(np.uint32)


@dataclass(frozen=True)
class TermRow:
    """One text as a bag of terms: distinct term ids (sorted), their counts, total terms."""

    ids: np.ndarray  # uint32
    counts: np.ndarray  # uint16
    length: int


def term_row(ids: np.ndarray) -> TermRow:
    """The :class:`TermRow` of a sequence of term ids."""
    distinct, counts = np.unique(np.asarray(ids, dtype=np.uint32), return_counts=True)
    return TermRow(distinct, np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16), int(len(ids)))


@dataclass(frozen=True)
class Collection:
    """Global BM25 statistics of one term space: rows, total length, document frequencies."""

    rows: int
    total_length: int
    df: np.ndarray  # document frequency per term id (may be memory-mapped)

    @property
    def average_length(self) -> float:
        return self.total_length / self.rows if self.rows else 1.0

    def idf(self, ids: np.ndarray) -> np.ndarray:
        """Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)), of the given term ids."""
        df = np.asarray(self.df[ids], dtype=np.float32) if len(ids) else np.empty(0, np.float32)
        return np.log1p((self.rows - df + 0.5) / (df + 0.5)).astype(np.float32)


def bm25_weights(counts: np.ndarray, row_lengths: np.ndarray, idf: np.ndarray, average_length: float) -> np.ndarray:
    """BM25 weight of each (term, row) entry from its count, its row's length and its idf."""
    tf = counts.astype(np.float32)
    norm = BM25_K1 * (1.0 - BM25_B + BM25_B * row_lengths.astype(np.float32) / max(average_length, 1e-9))
    return idf * tf * (BM25_K1 + 1.0) / (tf + norm)


@dataclass(frozen=True)
class Matches:
    """The entries of several rows whose term is a query term, in row order."""

    owner: np.ndarray  # position of the entry's row among the rows asked for
    term: np.ndarray  # index of the entry's term in the query's ids
    counts: np.ndarray


def matches(ptr: np.ndarray, ids: np.ndarray, counts: np.ndarray, rows: np.ndarray, query_ids: np.ndarray) -> Matches:
    """The entries of ``rows`` (of a ragged CSR table) whose id is in ``query_ids`` (sorted, distinct).

    Of a query's ~50 candidate rows (~20,000 entries) a few hundred match. A bitmap of the
    query ids' low bits rejects almost all the others in one pass (4x faster than a binary
    search of every entry), then the few left are checked by binary search. A table over
    all ids would need no check but misses the cache between encoder calls.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.asarray(ptr[rows], dtype=np.int64)
    ends = np.asarray(ptr[rows + 1], dtype=np.int64)
    if len(query_ids) == 0 or len(rows) == 0:
        return Matches(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, counts.dtype))
    # one slice per row: about twice as fast as computing a fancy index for ~50 rows, and
    # one read per row when the table is a RowFile
    spans = list(zip(starts.tolist(), ends.tolist()))
    row_ids = np.concatenate([ids[a:b] for a, b in spans])
    bitmap = np.zeros(1 << _FILTER_BITS, dtype=bool)
    bitmap[query_ids & _FILTER_MASK] = True
    maybe = np.flatnonzero(bitmap.take(row_ids & _FILTER_MASK))
    found = row_ids[maybe]
    term = np.searchsorted(query_ids, found)
    term[term == len(query_ids)] = 0
    hit = query_ids[term] == found
    at = maybe[hit]
    offsets = np.cumsum(ends - starts) - (ends - starts)
    owner = np.searchsorted(offsets, at, side="right") - 1
    if len(at) == 0:
        return Matches(owner, term[hit], np.empty(0, counts.dtype))
    if isinstance(counts, np.ndarray):  # memory-mapped: gather the matched entries' counts at once
        return Matches(owner, term[hit], counts[starts[owner] + at - offsets[owner]])
    # a RowFile: the counts of the rows that matched, one slice (one read) per row, not per entry
    matched = np.array(sorted(set(owner.tolist())), dtype=np.int64)  # np.unique would import numpy.ma
    lengths = ends - starts
    row_counts = np.concatenate([counts[spans[r][0]:spans[r][1]] for r in matched.tolist()])
    start_in_counts = np.zeros(len(rows), dtype=np.int64)
    start_in_counts[matched] = np.cumsum(lengths[matched]) - lengths[matched]
    return Matches(owner, term[hit], row_counts[start_in_counts[owner] + at - offsets[owner]])


def match_scores(found: Matches, n_rows: int, query_ids: np.ndarray, query_weights: np.ndarray,
                 row_lengths: np.ndarray, collection: Collection) -> np.ndarray:
    """Per row: sum over the query's terms of query weight x the row's BM25 weight.

    ``found`` are the rows' :func:`matches` of ``query_ids``; ``row_lengths`` is per row (n_rows).
    """
    if len(found.term) == 0:
        return np.zeros(n_rows, dtype=np.float32)
    weights = bm25_weights(found.counts, row_lengths[found.owner], collection.idf(query_ids)[found.term],
                           collection.average_length)
    return np.bincount(found.owner, weights=weights * query_weights[found.term], minlength=n_rows).astype(np.float32)
