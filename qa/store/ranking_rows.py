"""Per-chunk artifacts of hybrid retrieval, stored by row beside the chunk vectors.

Every file is a NumPy ``.npy`` array (never pickled) opened memory-mapped, so a query
reads only the rows of its ~50 candidates and an index of a million chunks is not loaded
into memory. Ragged data (pieces, term rows) is stored CSR-style: ``*_ptr[i]:*_ptr[i+1]``
are row ``i``'s entries. Per chunk (1500-character chunks, bundled encoder):

============================  ==============================================  ============
file                          what                                            bytes/chunk
                              (measured on 17k chunks of the bench's real text)
============================  ==============================================  ============
piece_ptr.npy                 int64, first piece of each row                  8
piece_vectors.npy             int8 [pieces, dim], in-context sentence         ~3,100
                              vectors (6.1 pieces per chunk), each scaled
                              by its largest magnitude
piece_scales.npy              float32, each piece vector's scale              ~24
piece_spans.npy               int32 [pieces, 2], piece offsets in the chunk   ~49
piece_window_norms.npy        float32, norm of piece + half its neighbours    ~24
ngram_ptr/ids/counts.npy      hashed char 4-gram term row (uint32 + uint8)    ~2,350
ngram_lengths.npy             int32, 4-grams in the row                       4
word_ptr/ids/counts.npy       vocabulary-word term row (uint32 + uint8)       ~470
word_lengths.npy              int32, words in the row                         4
profiles.npy                  uint32 [30], the row's document's most          120
                              frequent tokens (hashed): its language profile
============================  ==============================================  ============

Piece vectors are int8 with a float32 scale per piece (half the bytes of the bfloat16
they were; cosines within 2e-3 of float32, and every ``qa eval`` figure within 0.3
points): :meth:`RankingRows.piece_vectors_of` returns them as float32, and
:meth:`RankingRows.piece_cosines` their cosines with a question.

Plus, per index: ``ngram_df.npy`` (int32 per 4-gram bucket, 4 MB), ``word_df.npy`` (int32
per vocabulary word) and ``lexical.json`` (row count and total lengths).

A build writes the files as it goes (:class:`RankingRowWriter`): an incremental build copies the
retained rows from the previous generation block by block (never loading a whole file),
then each batch of new rows is appended as soon as it is encoded; document frequencies
are updated by subtracting the removed rows and adding the new ones.
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
from .row_files import GrowingRowFile, RowFile

LEXICAL_STATS_FILE = "lexical.json"
PROFILE_TOKENS = 30
_COPY_BLOCK_BYTES = 64 << 20
_REMOVED_ROWS_BLOCK = 4096
_MAPPED_FILE_BYTES = 64 << 20


def to_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows -> (int8 codes, float32 scale per row), each row scaled by its largest
    magnitude: ``codes * scale`` restores it within half a step (cosines within 2e-3)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1, initial=0.0) / 127
    safe = np.where(scales > 0, scales, 1).astype(np.float32)
    return np.rint(vectors / safe[:, None]).astype(np.int8), scales.astype(np.float32)


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


class RankingRows:
    """The per-row artifacts of one generation, memory-mapped; safe to share between threads.

    The local :class:`~qa.store.protocols.RankingRowStore`: search reads it through the
    protocol's methods only, never its arrays.
    """

    def __init__(self, folder: Path) -> None:
        def load(name: str) -> np.ndarray:
            return _load(folder / f"{name}.npy")

        self.piece_ptr = load("piece_ptr")
        self.piece_vectors = _rows(folder / "piece_vectors.npy")
        self.piece_scales = load("piece_scales")
        self.piece_spans = load("piece_spans")
        self.piece_window_norms = load("piece_window_norms")
        self.ngram_ptr = load("ngram_ptr")
        self.ngram_ids, self.ngram_counts = _rows(folder / "ngram_ids.npy"), _rows(folder / "ngram_counts.npy")
        self.ngram_lengths = load("ngram_lengths")
        self.word_ptr = load("word_ptr")
        self.word_ids, self.word_counts = _rows(folder / "word_ids.npy"), _rows(folder / "word_counts.npy")
        self.word_lengths = load("word_lengths")
        self.profiles = load("profiles")
        try:
            stats = json.loads((folder / LEXICAL_STATS_FILE).read_text(encoding="utf-8"))
            self.ngrams = Collection(int(stats["rows"]), int(stats["ngram_length"]), load("ngram_df"))
            self.words = Collection(int(stats["rows"]), int(stats["word_length"]), load("word_df"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"cannot read {folder / LEXICAL_STATS_FILE} ({exc}); run `qa index --rebuild`") from exc
        self.rows = len(self.piece_ptr) - 1
        rows = {"piece_ptr": self.rows, "ngram_ptr": len(self.ngram_ptr) - 1, "word_ptr": len(self.word_ptr) - 1,
                "ngram_lengths": len(self.ngram_lengths), "word_lengths": len(self.word_lengths),
                "profiles": len(self.profiles), LEXICAL_STATS_FILE: self.ngrams.rows}
        # Every ragged file must hold exactly what its pointer file says: a short or swapped
        # file would otherwise surface as an IndexError, or silently wrong rows, mid-query.
        entries = [
            {"piece_ptr": int(self.piece_ptr[-1]), "piece_vectors": len(self.piece_vectors),
             "piece_scales": len(self.piece_scales),
             "piece_spans": len(self.piece_spans), "piece_window_norms": len(self.piece_window_norms)},
            {"ngram_ptr": int(self.ngram_ptr[-1]), "ngram_ids": len(self.ngram_ids), "ngram_counts": len(self.ngram_counts)},
            {"word_ptr": int(self.word_ptr[-1]), "word_ids": len(self.word_ids), "word_counts": len(self.word_counts)},
            {"ngram_df": len(self.ngrams.df), "hash buckets": lexical.NGRAM_BUCKETS},
        ]
        if len(set(rows.values())) != 1 or any(len(set(group.values())) != 1 for group in entries):
            raise IndexCorruptError(f"{folder} has per-row files that disagree ({rows}, {entries}); "
                                    "run `qa index --rebuild`")

    @property
    def piece_total(self) -> int:
        return int(self.piece_ptr[-1])

    def piece_spans_of(self, pieces: np.ndarray) -> np.ndarray:
        return np.asarray(self.piece_spans[pieces])

    def window_norms_of(self, pieces: np.ndarray) -> np.ndarray:
        return np.asarray(self.piece_window_norms[pieces], dtype=np.float32)

    def ngram_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return lexical.matches(self.ngram_ptr, self.ngram_ids, self.ngram_counts, rows, ids)

    def word_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return lexical.matches(self.word_ptr, self.word_ids, self.word_counts, rows, ids)

    def ngram_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.ngram_lengths[rows])

    def word_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.word_lengths[rows])

    def profiles_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.profiles[rows])

    def word_ids_of(self, row: int) -> np.ndarray:
        """The vocabulary ids of the words of chunk ``row`` (int64)."""
        return np.asarray(self.word_ids[int(self.word_ptr[row]):int(self.word_ptr[row + 1])], dtype=np.int64)

    def pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(piece rows of ``rows`` concatenated, the position in ``rows`` owning each)."""
        starts = np.asarray(self.piece_ptr[rows], dtype=np.int64)
        counts = np.asarray(self.piece_ptr[rows + 1], dtype=np.int64) - starts
        owner = np.repeat(np.arange(len(rows)), counts)
        pieces = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
        return pieces, owner

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


# Every per-row file but the pointers: (rows it follows, dtype, shape of one entry). Rows
# of a group are ragged (``<group>_ptr``); ``row`` files hold one entry per chunk.
_COLUMNS = {
    "piece_vectors": ("piece", np.int8, None),  # None: the embedder's dimension
    "piece_scales": ("piece", np.float32, ()),
    "piece_spans": ("piece", np.int32, (2,)),
    "piece_window_norms": ("piece", np.float32, ()),
    "ngram_ids": ("ngram", np.uint32, ()),
    "ngram_counts": ("ngram", np.uint8, ()),
    "ngram_lengths": ("row", np.int32, ()),
    "word_ids": ("word", np.uint32, ()),
    "word_counts": ("word", np.uint8, ()),
    "word_lengths": ("row", np.int32, ()),
    "profiles": ("row", np.uint32, (PROFILE_TOKENS,)),
}
_GROUPS = ("piece", "ngram", "word")


class RankingRowWriter:
    """Writes the per-row files of a generation as its rows arrive, so that a build holds
    one batch of rows at a time, never all of them.

    Rows go in order: :meth:`keep` copies rows of the previous generation block by block,
    :meth:`add` appends a batch of new ones; :meth:`finish` writes the pointer files,
    document frequencies and totals. Term counts are stored as uint8 (a 4-gram or word
    seen more than 255 times in one chunk counts 255; the BM25 of such a count is
    saturated long before).
    """

    def __init__(self, workspace: Path, dimension: int) -> None:
        self.workspace = workspace
        self._files = {name: GrowingRowFile(workspace / f"{name}.npy", dtype, (dimension,) if shape is None else shape)
                       for name, (_, dtype, shape) in _COLUMNS.items()}
        self._sizes: dict[str, list[np.ndarray]] = {group: [] for group in _GROUPS}
        self._lengths = {"ngram": 0, "word": 0}
        self._new_df = {"ngram": np.zeros(lexical.NGRAM_BUCKETS, dtype=np.int64), "word": np.zeros(0, dtype=np.int64)}
        self._previous: RankingRows | None = None
        self._kept = np.empty(0, dtype=np.int64)
        self.rows = 0

    def keep(self, previous: RankingRows, kept_rows: np.ndarray) -> None:
        """Append rows ``kept_rows`` of ``previous`` (copied, never re-encoded). Called at most
        once, before any :meth:`add`: frequencies are carried over from ``previous``."""
        if self._previous is not None or self.rows:
            raise ValueError("RankingRowWriter.keep comes first, once")
        kept_rows = np.asarray(kept_rows, dtype=np.int64)
        self._previous, self._kept = previous, kept_rows
        runs = {"row": _runs(kept_rows)}
        for group in _GROUPS:
            ptr = getattr(previous, f"{group}_ptr")
            self._sizes[group].append(np.asarray(ptr[kept_rows + 1]) - np.asarray(ptr[kept_rows]))
            runs[group] = [(int(ptr[a]), int(ptr[b])) for a, b in runs["row"]]
        for name, (group, _, _) in _COLUMNS.items():
            for block in _blocks(getattr(previous, name), runs[group]):
                self._files[name].append(block)
                if name.endswith("_lengths"):
                    self._lengths[name.split("_")[0]] += int(block.sum(dtype=np.int64))
        self.rows += len(kept_rows)

    def add(self, new: NewRows) -> None:
        """Append a batch of freshly encoded rows."""
        spans = np.array([span for own in new.piece_spans for span in own], dtype=np.int32).reshape(-1, 2)
        self._sizes["piece"].append(np.array([len(s) for s in new.piece_spans], dtype=np.int64))
        for name, values in (("piece_vectors", new.piece_vectors), ("piece_scales", new.piece_scales),
                             ("piece_spans", spans), ("piece_window_norms", new.piece_window_norms),
                             ("profiles", new.profiles)):
            self._files[name].append(values)
        for group, term_rows in (("ngram", new.ngram_rows), ("word", new.word_rows)):
            ids = _concat([r.ids for r in term_rows], np.uint32)
            self._files[f"{group}_ids"].append(ids)
            self._files[f"{group}_counts"].append(
                np.minimum(_concat([r.counts for r in term_rows], np.uint16), np.iinfo(np.uint8).max))
            lengths = np.array([r.length for r in term_rows], dtype=np.int32)
            self._files[f"{group}_lengths"].append(lengths)
            self._lengths[group] += int(lengths.sum(dtype=np.int64))
            self._sizes[group].append(np.array([len(r.ids) for r in term_rows], dtype=np.int64))
            df = self._new_df[group]
            if len(ids) and int(ids.max()) >= len(df):  # the vocabulary grows as the build goes
                df = self._new_df[group] = np.concatenate([df, np.zeros(int(ids.max()) + 1 - len(df), np.int64)])
            df += np.bincount(ids, minlength=len(df))
        self.rows += len(new)

    def finish(self, vocabulary_size: int) -> np.ndarray:
        """Close the files and write pointers, frequencies and totals; returns the vocabulary
        words' document frequencies in the generation."""
        for file in self._files.values():
            file.close()
        for group in _GROUPS:
            sizes = np.concatenate([np.empty(0, np.int64), *self._sizes[group]])
            np.save(self.workspace / f"{group}_ptr.npy", np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    allow_pickle=False)
        removed = np.setdiff1d(np.arange(self._previous.rows if self._previous is not None else 0), self._kept)
        ngram_df = _document_frequencies(self._previous, "ngram", lexical.NGRAM_BUCKETS, removed, self._new_df["ngram"])
        word_df = _document_frequencies(self._previous, "word", vocabulary_size, removed, self._new_df["word"])
        np.save(self.workspace / "ngram_df.npy", ngram_df, allow_pickle=False)
        np.save(self.workspace / "word_df.npy", word_df, allow_pickle=False)
        stats = {"rows": self.rows, **{f"{group}_length": total for group, total in self._lengths.items()}}
        (self.workspace / LEXICAL_STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
        return word_df


def _blocks(source: np.ndarray | RowFile, runs: list[tuple[int, int]]):
    """``source[a:b]`` for each run, in blocks of at most _COPY_BLOCK_BYTES."""
    row_bytes = max(1, source.dtype.itemsize * int(np.prod(source.shape[1:], dtype=np.int64)))
    block = max(1, _COPY_BLOCK_BYTES // row_bytes)
    for a, b in runs:
        for start in range(a, b, block):
            yield np.asarray(source[start:min(b, start + block)])


def _document_frequencies(old: RankingRows | None, name: str, size: int, removed: np.ndarray,
                          new_df: np.ndarray) -> np.ndarray:
    """The previous frequencies, minus the removed rows' terms, plus the new rows' terms."""
    df = np.zeros(size, dtype=np.int32)
    if old is not None:
        previous = getattr(old, f"{name}s").df
        df[:len(previous)] = previous
        ptr, ids = getattr(old, f"{name}_ptr"), getattr(old, f"{name}_ids")
        for a, b in _runs(removed):  # run by run: removing most of a large index gathers nothing at once
            for start in range(a, b, _REMOVED_ROWS_BLOCK):
                end = min(b, start + _REMOVED_ROWS_BLOCK)
                df -= np.bincount(ids[int(ptr[start]):int(ptr[end])], minlength=size).astype(np.int32)[:size]
    df[:min(size, len(new_df))] += new_df[:size].astype(np.int32)
    return df


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
