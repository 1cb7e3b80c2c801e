"""Per-chunk artifacts of hybrid retrieval, stored by row beside the chunk vectors.

Every file is a NumPy ``.npy`` array (never pickled) opened memory-mapped, so a query
reads only the rows of its ~50 candidates and an index of a million chunks is not loaded
into memory. Ragged data (pieces, term rows) is stored CSR-style: ``*_ptr[i]:*_ptr[i+1]``
are row ``i``'s entries. Per chunk (1500-character chunks, bundled encoder):

============================  ==============================================  ============
file                          what                                            bytes/chunk
============================  ==============================================  ============
piece_ptr.npy                 int64, first piece of each row                  8
piece_vectors.npy             bfloat16 [pieces, dim] (stored as uint16: the    ~5,700
                              high half of each float32), in-context sentence
                              vectors (5.6 pieces per chunk)
piece_spans.npy               int32 [pieces, 2], piece offsets in the chunk   ~45
piece_window_norms.npy        float32, norm of piece + half its neighbours    ~22
ngram_ptr/ids/counts.npy      hashed char 4-gram term row (uint32 + uint16)   ~2,500
ngram_lengths.npy             int32, 4-grams in the row                       4
word_ptr/ids/counts.npy       vocabulary-word term row (uint32 + uint16)      ~700
word_lengths.npy              int32, words in the row                         4
profiles.npy                  uint32 [30], the row's document's most          120
                              frequent tokens (hashed): its language profile
============================  ==============================================  ============

Piece vectors are bfloat16 rather than float16 because widening bfloat16 is a shift (20 us
for a query's ~300 pieces) where NumPy's float16 conversion takes 190 us; cosines stay
within 5e-4 of float32.

Plus, per index: ``ngram_df.npy`` (int32 per 4-gram bucket, 4 MB), ``word_df.npy`` (int32
per vocabulary word) and ``lexical.json`` (row count and total lengths).

An incremental build copies the retained rows from the previous generation block by block
(never loading a whole file) and appends the new ones; document frequencies are updated by
subtracting the removed rows and adding the new ones.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import lexical
from .errors import IndexCorruptError
from .lexical import Collection, TermRow
from .rowfile import RowFile

LEXICAL_STATS_FILE = "lexical.json"
PROFILE_TOKENS = 30
# How much of a piece's neighbours its window vector adds (v_i + 0.5 (v_i-1 + v_i+1)).
WINDOW_NEIGHBOUR = 0.5
_COPY_BLOCK_BYTES = 64 << 20
_REMOVED_ROWS_BLOCK = 4096
_MAPPED_FILE_BYTES = 64 << 20


def to_bfloat16(vectors: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounded to nearest even."""
    bits = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32."""
    wide = np.asarray(bits).astype(np.uint32)
    wide <<= np.uint32(16)  # in place: one array of float32's size, not two
    return wide.view(np.float32)


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
    """Per piece, the norm of its window vector v_i + 0.5 (v_i-1 + v_i+1) within its chunk."""
    vectors = np.asarray(piece_vectors, dtype=np.float32)
    owner = np.repeat(np.arange(len(pieces_per_chunk)), pieces_per_chunk)
    window = vectors.copy()
    if len(vectors) > 1:
        same = owner[1:] == owner[:-1]
        window[1:][same] += WINDOW_NEIGHBOUR * vectors[:-1][same]
        window[:-1][same] += WINDOW_NEIGHBOUR * vectors[1:][same]
    return np.linalg.norm(window, axis=1).astype(np.float32)


@dataclass(frozen=True)
class NewRows:
    """The artifacts of freshly encoded chunks, in row order, in their stored form (a large
    first build holds them all until the write: bfloat16 halves the biggest part)."""

    piece_spans: list[list[tuple[int, int]]]
    piece_vectors: np.ndarray  # bfloat16 bit patterns (uint16) [pieces, dimension]
    piece_window_norms: np.ndarray  # float32 [pieces]
    ngram_rows: list[TermRow]
    word_rows: list[TermRow]
    profiles: np.ndarray  # uint32 [rows, PROFILE_TOKENS]

    def __len__(self) -> int:
        return len(self.piece_spans)

    @classmethod
    def encoded(cls, piece_spans: list[list[tuple[int, int]]], piece_vectors: np.ndarray, ngram_rows: list[TermRow],
                word_rows: list[TermRow], profiles: np.ndarray) -> NewRows:
        """Rows from float32 piece vectors, which are stored as bfloat16 with their window norms."""
        return cls(piece_spans, to_bfloat16(piece_vectors), window_norms(piece_vectors, [len(s) for s in piece_spans]),
                   ngram_rows, word_rows, np.asarray(profiles, dtype=np.uint32).reshape(-1, PROFILE_TOKENS))

    @classmethod
    def concatenate(cls, parts: Sequence[NewRows], dimension: int) -> NewRows:
        """The rows of ``parts``, one after the other."""
        return cls(
            piece_spans=[spans for part in parts for spans in part.piece_spans],
            piece_vectors=np.concatenate([np.empty((0, dimension), np.uint16), *(p.piece_vectors for p in parts)]),
            piece_window_norms=np.concatenate([np.empty(0, np.float32), *(p.piece_window_norms for p in parts)]),
            ngram_rows=[row for part in parts for row in part.ngram_rows],
            word_rows=[row for part in parts for row in part.word_rows],
            profiles=np.concatenate([np.empty((0, PROFILE_TOKENS), np.uint32), *(p.profiles for p in parts)]),
        )


class ChunkFeatures:
    """The per-row artifacts of one generation, memory-mapped; safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        def load(name: str) -> np.ndarray:
            return _load(folder / f"{name}.npy")

        self.piece_ptr = load("piece_ptr")
        self.piece_vectors = _rows(folder / "piece_vectors.npy")
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
             "piece_spans": len(self.piece_spans), "piece_window_norms": len(self.piece_window_norms)},
            {"ngram_ptr": int(self.ngram_ptr[-1]), "ngram_ids": len(self.ngram_ids), "ngram_counts": len(self.ngram_counts)},
            {"word_ptr": int(self.word_ptr[-1]), "word_ids": len(self.word_ids), "word_counts": len(self.word_counts)},
            {"ngram_df": len(self.ngrams.df), "hash buckets": lexical.NGRAM_BUCKETS},
        ]
        if len(set(rows.values())) != 1 or any(len(set(group.values())) != 1 for group in entries):
            raise IndexCorruptError(f"{folder} has per-row files that disagree ({rows}, {entries}); "
                                    "run `qa index --rebuild`")

    def piece_vectors_of(self, pieces: np.ndarray) -> np.ndarray:
        """The float32 vectors of sentence pieces (rows of ``piece_vectors``)."""
        return from_bfloat16(self.piece_vectors[pieces])

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


def write(workspace: Path, previous: ChunkFeatures | None, kept_rows: np.ndarray, new: NewRows,
          vocabulary_size: int) -> np.ndarray:
    """Write the artifacts of a generation: ``previous``'s ``kept_rows`` then ``new``'s rows.

    Returns the vocabulary words' document frequencies in the generation.
    """
    kept_rows = np.asarray(kept_rows, dtype=np.int64)
    runs = _runs(kept_rows)

    def ragged(name: str, new_sizes: Sequence[int], new_values: Sequence[tuple[str, np.ndarray]], dtypes: dict) -> None:
        previous_ptr = getattr(previous, f"{name}_ptr") if previous is not None else None
        kept_sizes = (np.asarray(previous_ptr[kept_rows + 1]) - np.asarray(previous_ptr[kept_rows])) if previous is not None else np.empty(0, np.int64)
        ptr = np.concatenate([[0], np.cumsum(np.concatenate([kept_sizes, np.asarray(new_sizes, dtype=np.int64)]))])
        np.save(workspace / f"{name}_ptr.npy", ptr.astype(np.int64), allow_pickle=False)
        value_runs = [(int(previous_ptr[a]), int(previous_ptr[b])) for a, b in runs] if previous is not None else []
        for suffix, values in new_values:
            source = getattr(previous, f"{name}_{suffix}") if previous is not None else None
            _write_concatenated(workspace / f"{name}_{suffix}.npy", source, value_runs, values, dtypes[suffix])

    piece_counts = [len(s) for s in new.piece_spans]
    spans = np.array([span for own in new.piece_spans for span in own], dtype=np.int32).reshape(-1, 2)
    ragged("piece", piece_counts, [
        ("vectors", new.piece_vectors),
        ("spans", spans),
        ("window_norms", new.piece_window_norms),
    ], {"vectors": np.uint16, "spans": np.int32, "window_norms": np.float32})
    for name, term_rows in (("ngram", new.ngram_rows), ("word", new.word_rows)):
        ragged(name, [len(r.ids) for r in term_rows], [
            ("ids", _concat([r.ids for r in term_rows], np.uint32)),
            ("counts", _concat([r.counts for r in term_rows], np.uint16)),
        ], {"ids": np.uint32, "counts": np.uint16})
        lengths = np.array([r.length for r in term_rows], dtype=np.int32)
        _write_concatenated(workspace / f"{name}_lengths.npy", getattr(previous, f"{name}_lengths", None), runs, lengths, np.int32)
    _write_concatenated(workspace / "profiles.npy", getattr(previous, "profiles", None), runs,
                        new.profiles.reshape(-1, PROFILE_TOKENS), np.uint32)

    removed = np.setdiff1d(np.arange(previous.rows if previous is not None else 0), kept_rows)
    ngram_df = _document_frequencies(previous, "ngram", lexical.NGRAM_BUCKETS, removed, new.ngram_rows)
    word_df = _document_frequencies(previous, "word", vocabulary_size, removed, new.word_rows)
    np.save(workspace / "ngram_df.npy", ngram_df, allow_pickle=False)
    np.save(workspace / "word_df.npy", word_df, allow_pickle=False)
    stats = {"rows": len(kept_rows) + len(new), **{
        f"{name}_length": int(np.load(workspace / f"{name}_lengths.npy", mmap_mode="r", allow_pickle=False).sum(dtype=np.int64))
        for name in ("ngram", "word")}}
    (workspace / LEXICAL_STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
    return word_df


def _document_frequencies(old: ChunkFeatures | None, name: str, size: int, removed: np.ndarray,
                          new_rows: list[TermRow]) -> np.ndarray:
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
    if new_rows:
        ids = _concat([r.ids for r in new_rows], np.uint32)
        df += np.bincount(ids, minlength=size).astype(np.int32)[:size]
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


def _write_concatenated(path: Path, source: np.ndarray | None, runs: list[tuple[int, int]], new: np.ndarray, dtype) -> None:
    """Write ``source[a:b]`` for each run, then ``new``, as one .npy, copying block by block."""
    new = np.asarray(new, dtype=dtype)
    kept = sum(b - a for a, b in runs) if source is not None else 0
    shape = (kept + len(new),) + new.shape[1:]
    if kept == 0 or shape[0] * new.dtype.itemsize * max(1, int(np.prod(shape[1:]))) < _COPY_BLOCK_BYTES:
        parts = [np.asarray(source[a:b]) for a, b in runs] if kept else []
        np.save(path, np.concatenate(parts + [new]).astype(dtype, copy=False) if parts else new, allow_pickle=False)
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    row_bytes = new.dtype.itemsize * max(1, int(np.prod(shape[1:])))
    block = max(1, _COPY_BLOCK_BYTES // row_bytes)
    at = 0
    for a, b in runs:
        for s in range(a, b, block):
            e = min(b, s + block)
            out[at:at + e - s] = source[s:e]
            at += e - s
    out[at:] = new
    out.flush()
    del out


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
