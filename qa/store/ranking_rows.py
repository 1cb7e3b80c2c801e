"""Per-chunk artifacts of hybrid retrieval, stored by row beside the chunk vectors.

Every file is a NumPy ``.npy`` array (never pickled) opened memory-mapped, so a query
reads only the rows of its ~50 candidates and an index of a million chunks is not loaded
into memory. Ragged data (pieces, term rows) is stored CSR-style: ``*_ptr[i]:*_ptr[i+1]``
are row ``i``'s entries. Per chunk (1500-character chunks, bundled encoder; measured on
the 212 chunks of the Spanish XQuAD-R pool, bench/disk_size.py):

============================  ==============================================  ============
file                          what                                            bytes/chunk
============================  ==============================================  ============
piece_ptr.npy                 int64, first piece of each row                  8
piece_vectors.npy             int8 [pieces, dim], in-context sentence         ~2,880
                              vectors (5.6 pieces per chunk), each scaled
                              by its largest magnitude
piece_scales.npy              float32, each piece vector's scale              ~23
piece_spans.npy               int32 [pieces, 2], piece offsets in the chunk   ~45
piece_window_norms.npy        float32, norm of piece + half its neighbours    ~23
ngram_ptr.npy, ngram_terms    hashed char 4-gram term row: 3 bytes a term,    ~1,260
.npy                          bucket and count (:func:`~qa.store.codecs
                              .pack_terms`)
ngram_lengths.npy             int32, 4-grams in the row                       4
word_ptr.npy, word_terms.npy  vocabulary-word term row: 4 bytes a term, id   ~330
                              and count
word_lengths.npy              int32, words in the row                         4
profile_ids.npy               uint32, the row's profile in profiles.npy       4
profiles.npy                  uint32 [profiles, 30], each distinct profile    ~1 per
                              once: a document's most frequent tokens         document
                              (hashed), its language profile
============================  ==============================================  ============

Piece vectors are int8 with a float32 scale per piece (half the bytes of the bfloat16
they were; cosines within 2e-3 of float32, and every ``qa eval`` figure within 0.3
points): :meth:`RankingRows.piece_vectors_of` returns them as float32, and
:meth:`RankingRows.piece_cosines` their cosines with a question. Fewer bits were measured
(bench/disk_size.py, format 6): 5-bit codes save 1.1 KB a chunk, but the sentence chosen
from a passage's pieces changes for about 1 question in 200, which moves ``qa eval``'s
dense-only answer_hit by 0.4 to 0.5 points.

These files belong to a segment (:mod:`qa.store.segments`): a generation is one or more
segments, and its rows are numbered across them. Plus, per generation: ``ngram_df.npy``
(int32 per 4-gram bucket, 4 MB), ``word_df.npy`` (int32 per vocabulary word) and
``lexical.json`` (live rows, their pieces and total lengths), all counting live rows only.

A build writes a segment's files as it goes (:class:`SegmentRowWriter`): each batch of new
rows is appended as soon as it is encoded, and a merge of segments copies their live rows
block by block (never loading a whole file). The generation's statistics
(:func:`write_statistics`) are the previous ones minus the removed rows' terms plus the new
rows' terms: the work of an update is that of the rows it changes.
"""

from __future__ import annotations

import json
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..text import lexical
from ..errors import IndexCorruptError
from ..text.lexical import Collection, TermRow
from .protocols import window_sums
from .codecs import NGRAM_TERMS, WORD_TERMS, pack_terms, to_int8, unpack_terms
from .row_files import GrowingRowFile, RowFile
from .segments import split_rows

LEXICAL_STATS_FILE = "lexical.json"
PROFILE_TOKENS = 30
_COPY_BLOCK_BYTES = 64 << 20
_REMOVED_ROWS_BLOCK = 4096
_MAPPED_FILE_BYTES = 64 << 20


def language_profile(text: str) -> np.ndarray:
    """Hashes of the document's PROFILE_TOKENS most frequent tokens, zero-padded.

    A language's most frequent tokens are its function words, so a query that shares
    many of them with a document is in the document's language: derived from the data,
    with no list of languages.
    """
    top = [token for token, _ in Counter(lexical.tokens(text)).most_common(PROFILE_TOKENS)]
    profile = np.zeros(PROFILE_TOKENS, dtype=np.uint32)
    profile[:len(top)] = lexical.token_hashes(top)
    return profile


def window_norms(piece_vectors: np.ndarray, pieces_per_chunk: Sequence[int]) -> np.ndarray:
    """Per piece, the norm of its window vector (:func:`window_sums`) within its chunk."""
    vectors = np.asarray(piece_vectors, dtype=np.float32)
    owner = np.repeat(np.arange(len(pieces_per_chunk)), pieces_per_chunk)
    return np.linalg.norm(window_sums(vectors, owner), axis=1).astype(np.float32)


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, for _LIVE_ROWS
class NewRows:
    """The artifacts of one batch of freshly encoded chunks, in row order, in their stored
    form. A build writes each batch with a :class:`RankingRowWriter` and drops it before encoding
    the next; :func:`rows_in_memory` counts the rows of the instances alive."""

    piece_spans: list[list[tuple[int, int]]]
    piece_vectors: np.ndarray  # int8 [pieces, dimension]
    piece_scales: np.ndarray  # float32 [pieces]: vector = piece_vectors * scale
    piece_window_norms: np.ndarray  # float32 [pieces]
    ngram_rows: list[TermRow]
    word_rows: list[TermRow]
    profiles: np.ndarray  # uint32 [rows, PROFILE_TOKENS]

    def __post_init__(self) -> None:
        _LIVE_ROWS.add(self)

    def __len__(self) -> int:
        return len(self.piece_spans)

    @classmethod
    def encoded(cls, piece_spans: list[list[tuple[int, int]]], piece_vectors: np.ndarray, ngram_rows: list[TermRow],
                word_rows: list[TermRow], profiles: np.ndarray) -> NewRows:
        """Rows from float32 piece vectors, which are stored as int8 with their window norms."""
        codes, scales = to_int8(piece_vectors)
        return cls(piece_spans, codes, scales, window_norms(piece_vectors, [len(s) for s in piece_spans]),
                   ngram_rows, word_rows, np.asarray(profiles, dtype=np.uint32).reshape(-1, PROFILE_TOKENS))


_LIVE_ROWS: weakref.WeakSet[NewRows] = weakref.WeakSet()


def rows_in_memory() -> int:
    """Rows of :class:`NewRows` alive in this process: what a build holds at the moment
    (a diagnostic for bounded build memory; see tests/test_build_memory.py)."""
    return sum(len(rows) for rows in list(_LIVE_ROWS))


class SegmentRows:
    """The per-row files of one segment, memory-mapped; safe to share between threads. Rows
    and pieces are the segment's own, numbered from 0."""

    def __init__(self, folder: Path) -> None:
        def load(name: str) -> np.ndarray:
            return _load(folder / f"{name}.npy")

        self.folder = folder
        self.piece_ptr = load("piece_ptr")
        self.piece_vectors = _rows(folder / "piece_vectors.npy")
        self.piece_scales = load("piece_scales")
        self.piece_spans = load("piece_spans")
        self.piece_window_norms = load("piece_window_norms")
        self.ngram_ptr = load("ngram_ptr")
        self.ngram_terms = _rows(folder / "ngram_terms.npy")  # uint8 [entries, 3]: :func:`~qa.store.codecs.pack_terms`
        self.ngram_lengths = load("ngram_lengths")
        self.word_ptr = load("word_ptr")
        self.word_terms = _rows(folder / "word_terms.npy")  # uint8 [entries, 4]
        self.word_lengths = load("word_lengths")
        self.profile_ids = load("profile_ids")
        self.profiles = load("profiles")  # each distinct profile once; rows name theirs in profile_ids
        self.rows = len(self.piece_ptr) - 1
        rows = {"piece_ptr": self.rows, "ngram_ptr": len(self.ngram_ptr) - 1, "word_ptr": len(self.word_ptr) - 1,
                "ngram_lengths": len(self.ngram_lengths), "word_lengths": len(self.word_lengths),
                "profile_ids": len(self.profile_ids)}
        # Every ragged file must hold exactly what its pointer file says: a short or swapped
        # file would otherwise surface as an IndexError, or silently wrong rows, mid-query.
        entries = [
            {"piece_ptr": int(self.piece_ptr[-1]), "piece_vectors": len(self.piece_vectors),
             "piece_scales": len(self.piece_scales),
             "piece_spans": len(self.piece_spans), "piece_window_norms": len(self.piece_window_norms)},
            {"ngram_ptr": int(self.ngram_ptr[-1]), "ngram_terms": len(self.ngram_terms)},
            {"word_ptr": int(self.word_ptr[-1]), "word_terms": len(self.word_terms)},
        ]
        if len(self.profile_ids) and int(self.profile_ids.max()) >= len(self.profiles):
            raise IndexCorruptError(f"{folder} names profiles that profiles.npy lacks; run `qa index --rebuild`")
        if len(set(rows.values())) != 1 or any(len(set(group.values())) != 1 for group in entries):
            raise IndexCorruptError(f"{folder} has per-row files that disagree ({rows}, {entries}); "
                                    "run `qa index --rebuild`")

    @property
    def piece_total(self) -> int:
        return int(self.piece_ptr[-1])

    @property
    def dimension(self) -> int:
        """The piece vectors' dimension."""
        return int(self.piece_vectors.shape[1])

    def terms(self, group: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint32 ids, uint8 counts) of entries ``start`` .. ``end - 1`` of the ``group``
        ("ngram" or "word") term rows."""
        return unpack_terms(getattr(self, f"{group}_terms")[start:end], _LAYOUTS[group])

    def piece_spans_of(self, pieces: np.ndarray) -> np.ndarray:
        return np.asarray(self.piece_spans[pieces])

    def window_norms_of(self, pieces: np.ndarray) -> np.ndarray:
        return np.asarray(self.piece_window_norms[pieces], dtype=np.float32)

    def _matches(self, group: str, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        # one slice (one read) of packed terms per row, unpacked together, then matched in memory
        rows = np.asarray(rows, dtype=np.int64)
        ptr, terms, layout = getattr(self, f"{group}_ptr"), getattr(self, f"{group}_terms"), _LAYOUTS[group]
        starts, ends = np.asarray(ptr[rows], np.int64), np.asarray(ptr[rows + 1], np.int64)
        packed = [terms[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
        term_ids, counts = unpack_terms(np.concatenate(packed) if packed else np.empty((0, layout.width), np.uint8),
                                        layout)
        return lexical.matches(np.concatenate([[0], np.cumsum(ends - starts)]), term_ids, counts,
                               np.arange(len(rows), dtype=np.int64), ids)

    def ngram_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return self._matches("ngram", rows, ids)

    def word_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return self._matches("word", rows, ids)

    def ngram_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.ngram_lengths[rows])

    def word_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.word_lengths[rows])

    def profiles_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.profiles[np.asarray(self.profile_ids[rows], dtype=np.int64)])

    def word_ids_of(self, row: int) -> np.ndarray:
        """The vocabulary ids of the words of chunk ``row`` (int64)."""
        return self.terms("word", int(self.word_ptr[row]), int(self.word_ptr[row + 1]))[0].astype(np.int64)

    def pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(piece rows of ``rows`` concatenated, the position in ``rows`` owning each)."""
        starts = np.asarray(self.piece_ptr[rows], dtype=np.int64)
        return _piece_runs(starts, np.asarray(self.piece_ptr[rows + 1], dtype=np.int64) - starts)

    def piece_vectors_of(self, pieces: np.ndarray) -> np.ndarray:
        """float32 vectors of the piece rows ``pieces`` (stored as int8 codes and a scale)."""
        codes = self.piece_vectors[pieces]
        return codes.astype(np.float32) * np.asarray(self.piece_scales[pieces], dtype=np.float32)[:, None]

    def piece_cosines(self, pieces: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The cosines of the piece rows ``pieces`` with the unit ``vector``: as
        ``piece_vectors_of(pieces) @ vector``, but scaled after the product (as fast as
        widening bfloat16 was; scaling every vector first took twice as long)."""
        codes = self.piece_vectors[pieces]
        return (codes.astype(np.float32) @ vector) * np.asarray(self.piece_scales[pieces], dtype=np.float32)




class RankingRows:
    """The :class:`~qa.store.protocols.RankingRowStore` of a generation: its segments' rows,
    numbered across them (row ``r`` of segment ``i`` is row ``starts[i] + r``, and its pieces
    likewise), and the generation's statistics; safe to share between threads.

    Search reads it through the protocol's methods only, never its arrays. ``rows`` counts
    the row numbers in use, the deleted rows of a segment included (they are never asked
    for: the vector index leaves them out); the statistics count live rows only.
    """

    def __init__(self, folder: Path, segments: Sequence[SegmentRows]) -> None:
        self.segments = list(segments)
        self._single = self.segments[0] if len(self.segments) == 1 else None
        self.starts = np.concatenate([[0], np.cumsum([s.rows for s in self.segments])]).astype(np.int64)
        self.piece_starts = np.concatenate([[0], np.cumsum([s.piece_total for s in self.segments])]).astype(np.int64)
        self.rows = int(self.starts[-1])
        try:
            stats = json.loads((folder / LEXICAL_STATS_FILE).read_text(encoding="utf-8"))
            self.ngrams = Collection(int(stats["rows"]), int(stats["ngram_length"]), _load(folder / "ngram_df.npy"))
            self.words = Collection(int(stats["rows"]), int(stats["word_length"]), _load(folder / "word_df.npy"))
            self._pieces = int(stats["pieces"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"cannot read {folder / LEXICAL_STATS_FILE} ({exc}); run `qa index --rebuild`") from exc
        if len(self.ngrams.df) != lexical.NGRAM_BUCKETS:
            raise IndexCorruptError(f"{folder / 'ngram_df.npy'} has {len(self.ngrams.df)} entries, not "
                                    f"{lexical.NGRAM_BUCKETS}; run `qa index --rebuild`")

    @property
    def piece_total(self) -> int:
        """Sentence pieces of the live rows."""
        return self._pieces

    def _by_segment(self, numbers: np.ndarray, starts: np.ndarray):
        """(segment index, positions in ``numbers``, the segment's own numbers) for each
        segment that ``numbers`` (rows or pieces, by ``starts``) fall in."""
        return split_rows(numbers, starts)

    def _gather(self, numbers: np.ndarray, starts: np.ndarray, read, dtype) -> np.ndarray:
        parts = list(self._by_segment(numbers, starts))
        if not parts:
            return np.asarray(read(self.segments[0], np.asarray(numbers, dtype=np.int64)), dtype=dtype)
        first = np.asarray(read(self.segments[parts[0][0]], parts[0][2]))
        result = np.empty((len(numbers), *first.shape[1:]), dtype=dtype)
        result[parts[0][1]] = first
        for index, positions, own in parts[1:]:
            result[positions] = read(self.segments[index], own)
        return result

    def pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(piece rows of ``rows`` concatenated, the position in ``rows`` owning each)."""
        if self._single is not None:
            return self._single.pieces(rows)
        rows = np.asarray(rows, dtype=np.int64)
        starts = np.empty(len(rows), dtype=np.int64)
        counts = np.empty(len(rows), dtype=np.int64)
        for index, positions, own in self._by_segment(rows, self.starts):
            ptr = self.segments[index].piece_ptr
            first = np.asarray(ptr[own], dtype=np.int64)
            starts[positions] = first + self.piece_starts[index]
            counts[positions] = np.asarray(ptr[own + 1], dtype=np.int64) - first
        return _piece_runs(starts, counts)

    def piece_vectors_of(self, pieces: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.piece_vectors_of(pieces)
        return self._gather(pieces, self.piece_starts, SegmentRows.piece_vectors_of, np.float32)

    def piece_cosines(self, pieces: np.ndarray, vector: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.piece_cosines(pieces, vector)
        return self._gather(pieces, self.piece_starts, lambda s, own: s.piece_cosines(own, vector), np.float32)

    def piece_spans_of(self, pieces: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.piece_spans_of(pieces)
        return self._gather(pieces, self.piece_starts, SegmentRows.piece_spans_of, np.int32)

    def window_norms_of(self, pieces: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.window_norms_of(pieces)
        return self._gather(pieces, self.piece_starts, SegmentRows.window_norms_of, np.float32)

    def _matches(self, name: str, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        parts = [(positions, getattr(self.segments[index], name)(own, ids)) for index, positions, own in
                 self._by_segment(rows, self.starts)]
        if not parts:
            return getattr(self.segments[0], name)(np.asarray(rows, dtype=np.int64), ids)
        owner = np.concatenate([positions[found.owner] for positions, found in parts])
        order = np.argsort(owner, kind="stable")  # in the order of ``rows``, as one segment's are
        return lexical.Matches(owner[order], np.concatenate([found.term for _, found in parts])[order],
                               np.concatenate([found.counts for _, found in parts])[order])

    def ngram_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        if self._single is not None:
            return self._single.ngram_matches(rows, ids)
        return self._matches("ngram_matches", rows, ids)

    def word_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        if self._single is not None:
            return self._single.word_matches(rows, ids)
        return self._matches("word_matches", rows, ids)

    def ngram_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.ngram_lengths_of(rows)
        return self._gather(rows, self.starts, SegmentRows.ngram_lengths_of, np.int32)

    def word_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.word_lengths_of(rows)
        return self._gather(rows, self.starts, SegmentRows.word_lengths_of, np.int32)

    def profiles_of(self, rows: np.ndarray) -> np.ndarray:
        if self._single is not None:
            return self._single.profiles_of(rows)
        return self._gather(rows, self.starts, SegmentRows.profiles_of, np.uint32)

    def word_ids_of(self, row: int) -> np.ndarray:
        """The vocabulary ids of the words of chunk ``row`` (int64)."""
        ((index, _, own),) = self._by_segment(np.array([row]), self.starts)
        return self.segments[index].word_ids_of(int(own[0]))

    def totals_of(self, rows: np.ndarray) -> dict[str, int]:
        """The pieces and total n-gram and word lengths of ``rows``."""
        totals = {"pieces": 0, "ngram_length": 0, "word_length": 0}
        for index, _, own in self._by_segment(rows, self.starts):
            segment = self.segments[index]
            totals["pieces"] += int((np.asarray(segment.piece_ptr[own + 1]) - np.asarray(segment.piece_ptr[own])).sum())
            totals["ngram_length"] += int(np.asarray(segment.ngram_lengths[own]).sum(dtype=np.int64))
            totals["word_length"] += int(np.asarray(segment.word_lengths[own]).sum(dtype=np.int64))
        return totals

    def term_ids_of(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Every term id of ``rows`` (``name``: ngram or word), repeated per row that has it:
        what the rows add to the document frequencies."""
        parts = [np.empty(0, dtype=np.uint32)]
        for index, _, own in self._by_segment(rows, self.starts):
            segment = self.segments[index]
            ptr = getattr(segment, f"{name}_ptr")
            parts.extend(segment.terms(name, int(ptr[a]), int(ptr[b]))[0] for a, b in _runs(np.sort(own)))
        return np.concatenate(parts)


# Every per-row file but the pointers: (rows it follows, dtype, shape of one entry). Rows
# of a group are ragged (``<group>_ptr``); ``row`` files hold one entry per chunk.
_COLUMNS = {
    "piece_vectors": ("piece", np.int8, None),  # None: the embedder's dimension
    "piece_scales": ("piece", np.float32, ()),
    "piece_spans": ("piece", np.int32, (2,)),
    "piece_window_norms": ("piece", np.float32, ()),
    "ngram_terms": ("ngram", np.uint8, (NGRAM_TERMS.width,)),
    "ngram_lengths": ("row", np.int32, ()),
    "word_terms": ("word", np.uint8, (WORD_TERMS.width,)),
    "word_lengths": ("row", np.int32, ()),
    "profile_ids": ("row", np.uint32, ()),
}
_GROUPS = ("piece", "ngram", "word")
_LAYOUTS = {"ngram": NGRAM_TERMS, "word": WORD_TERMS}


class SegmentRowWriter:
    """Writes the per-row files of one segment as its rows arrive, so that a build holds
    one batch of rows at a time, never all of them.

    Rows go in order: :meth:`copy` appends live rows of an existing segment block by block
    (a merge), :meth:`add` a batch of new ones; :meth:`finish` writes the pointer files.
    Term counts are capped (a word seen more than 256 times in one chunk counts 256, a
    4-gram 16: :class:`~qa.store.codecs.TermLayout`): the BM25 of such a count is saturated
    long before. The new rows' document
    frequencies and lengths are kept for :func:`write_statistics`.
    """

    def __init__(self, folder: Path, dimension: int) -> None:
        self.folder = folder
        self._files = {name: GrowingRowFile(folder / f"{name}.npy", dtype, (dimension,) if shape is None else shape)
                       for name, (_, dtype, shape) in _COLUMNS.items()}
        self._sizes: dict[str, list[np.ndarray]] = {group: [] for group in _GROUPS}
        #: what the rows given to :meth:`add` bring: total lengths and document frequencies
        self.new_lengths = {"ngram": 0, "word": 0}
        self.new_df = {"ngram": np.zeros(lexical.NGRAM_BUCKETS, dtype=np.int64), "word": np.zeros(0, dtype=np.int64)}
        self.new_rows = self.new_pieces = 0
        self.rows = 0
        # the distinct profiles in order of first use (a document's rows share one), written at finish
        self._profiles: dict[bytes, int] = {}

    def copy(self, source: SegmentRows, rows: np.ndarray) -> None:
        """Append rows ``rows`` (sorted) of the segment ``source``, copied, never re-encoded."""
        rows = np.asarray(rows, dtype=np.int64)
        runs = {"row": _runs(rows)}
        for group in _GROUPS:
            ptr = getattr(source, f"{group}_ptr")
            self._sizes[group].append(np.asarray(ptr[rows + 1]) - np.asarray(ptr[rows]))
            runs[group] = [(int(ptr[a]), int(ptr[b])) for a, b in runs["row"]]
        for name, (group, _, _) in _COLUMNS.items():
            if name == "profile_ids":  # renumbered: the profiles are this segment's own
                for start in range(0, len(rows), _REMOVED_ROWS_BLOCK):
                    self._files[name].append(self._profile_ids(source.profiles_of(rows[start:start + _REMOVED_ROWS_BLOCK])))
                continue
            for block in _blocks(getattr(source, name), runs[group]):
                self._files[name].append(block)
        self.rows += len(rows)

    def _profile_ids(self, profiles: np.ndarray) -> np.ndarray:
        """The numbers of ``profiles`` among this segment's distinct ones, new ones added."""
        profiles = np.ascontiguousarray(profiles, dtype=np.uint32)
        return np.array([self._profiles.setdefault(p.tobytes(), len(self._profiles)) for p in profiles],
                        dtype=np.uint32)

    def add(self, new: NewRows) -> None:
        """Append a batch of freshly encoded rows."""
        spans = np.array([span for own in new.piece_spans for span in own], dtype=np.int32).reshape(-1, 2)
        self._sizes["piece"].append(np.array([len(s) for s in new.piece_spans], dtype=np.int64))
        for name, values in (("piece_vectors", new.piece_vectors), ("piece_scales", new.piece_scales),
                             ("piece_spans", spans), ("piece_window_norms", new.piece_window_norms),
                             ("profile_ids", self._profile_ids(new.profiles))):
            self._files[name].append(values)
        for group, term_rows in (("ngram", new.ngram_rows), ("word", new.word_rows)):
            ids = _concat([r.ids for r in term_rows], np.uint32)
            counts = _concat([r.counts for r in term_rows], np.uint16)
            self._files[f"{group}_terms"].append(pack_terms(ids, counts, _LAYOUTS[group]))
            lengths = np.array([r.length for r in term_rows], dtype=np.int32)
            self._files[f"{group}_lengths"].append(lengths)
            self.new_lengths[group] += int(lengths.sum(dtype=np.int64))
            self._sizes[group].append(np.array([len(r.ids) for r in term_rows], dtype=np.int64))
            df = self.new_df[group]
            if len(ids) and int(ids.max()) >= len(df):  # the vocabulary grows as the build goes
                df = self.new_df[group] = np.concatenate([df, np.zeros(int(ids.max()) + 1 - len(df), np.int64)])
            df += np.bincount(ids, minlength=len(df))
        self.rows += len(new)
        self.new_rows += len(new)
        self.new_pieces += len(spans)

    def finish(self) -> None:
        """Close the files and write the pointers and the distinct profiles."""
        for file in self._files.values():
            file.close()
        profiles = np.frombuffer(b"".join(self._profiles), dtype=np.uint32).reshape(-1, PROFILE_TOKENS)
        np.save(self.folder / "profiles.npy", profiles, allow_pickle=False)
        for group in _GROUPS:
            sizes = np.concatenate([np.empty(0, np.int64), *self._sizes[group]])
            np.save(self.folder / f"{group}_ptr.npy", np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    allow_pickle=False)


def write_statistics(workspace: Path, previous: RankingRows | None, removed: np.ndarray, added: SegmentRowWriter,
                     vocabulary_size: int) -> np.ndarray:
    """Write a generation's document frequencies and totals: ``previous``'s, minus those of
    its rows ``removed``, plus those of the rows ``added`` brought; returns the vocabulary
    words' document frequencies. Reads only the removed rows' terms."""
    removed = np.asarray(removed, dtype=np.int64)
    stats = {"rows": added.new_rows, "pieces": added.new_pieces,
             "ngram_length": added.new_lengths["ngram"], "word_length": added.new_lengths["word"]}
    if previous is not None:
        gone = previous.totals_of(removed)
        stats["rows"] += previous.ngrams.rows - len(removed)
        stats["pieces"] += previous.piece_total - gone["pieces"]
        stats["ngram_length"] += previous.ngrams.total_length - gone["ngram_length"]
        stats["word_length"] += previous.words.total_length - gone["word_length"]
    frequencies = {}
    for name, size in (("ngram", lexical.NGRAM_BUCKETS), ("word", vocabulary_size)):
        df = np.zeros(size, dtype=np.int64)
        if previous is not None:
            old = getattr(previous, f"{name}s").df
            df[:len(old)] = old
            df -= np.bincount(previous.term_ids_of(name, removed), minlength=size)[:size]
        new = added.new_df[name]
        df[:min(size, len(new))] += new[:size]
        frequencies[name] = df.astype(np.int32)
        np.save(workspace / f"{name}_df.npy", frequencies[name], allow_pickle=False)
    (workspace / LEXICAL_STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
    return frequencies["word"]


def _blocks(source: np.ndarray | RowFile, runs: list[tuple[int, int]]):
    """``source[a:b]`` for each run, in blocks of at most _COPY_BLOCK_BYTES."""
    row_bytes = max(1, source.dtype.itemsize * int(np.prod(source.shape[1:], dtype=np.int64)))
    block = max(1, _COPY_BLOCK_BYTES // row_bytes)
    for a, b in runs:
        for start in range(a, b, block):
            yield np.asarray(source[start:min(b, start + block)])


def _piece_runs(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the pieces of rows whose pieces are ``starts[i]`` .. ``starts[i] + counts[i] - 1``, in
    order, and the position of each one's row)."""
    owner = np.repeat(np.arange(len(starts)), counts)
    pieces = (np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
              + np.repeat(starts, counts))
    return pieces, owner


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Rows, in the order given, as maximal runs ``[a, b)`` of consecutive rows."""
    if len(rows) == 0:
        return []
    breaks = np.nonzero(np.diff(rows) != 1)[0]
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    ends = np.concatenate([rows[breaks] + 1, [rows[-1] + 1]])
    return list(zip(starts.tolist(), ends.tolist()))


def _load(path: Path) -> np.ndarray:
    """The array at ``path``, memory-mapped (as a plain ndarray view: memmap slicing is slower)."""
    try:
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from exc


def _rows(path: Path) -> np.ndarray | RowFile:
    """A large per-row file: memory-mapped up to _MAPPED_FILE_BYTES, read with ``pread`` beyond.

    A query reads a few scattered rows. Through a memory map the kernel's fault-around keeps
    up to 64 KB around each row in the process's RSS (at 1M chunks: 6.6 MB more per query,
    2.9 GB after 300), which is harmless while the file is small and fastest; ``pread``
    leaves the RSS alone but costs a system call per row (about +0.5 ms a query).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from exc
    return _load(path) if size <= _MAPPED_FILE_BYTES else RowFile(path)
