"""Compact fixed-width encodings of per-row data, so one row is still read on its own.

Every codec keeps a fixed width per entry: a query reads the rows of its ~50 candidates
with one slice each, and a merge copies rows as bytes, never decoding them.

- Piece vectors as PIECE_BITS-bit codes with a float32 scale per vector.
- Term rows as one fixed-width entry a term (:class:`TermLayout`): a hashed 4-gram in 3
  bytes, its 20-bit bucket and its count in 4 bits (a count past 16 counts 16; BM25's term
  frequency is saturated by then); a vocabulary word in 4 bytes, a 24-bit id and a count to 256.
- Chunk vectors as int8 codes with a float32 scale per vector (the exact re-score copy of
  an approximate vector index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..text.lexical import NGRAM_BUCKET_BITS

#: Bits of a piece vector's code (:func:`to_codes`).
PIECE_BITS = 5


def to_codes(vectors: np.ndarray, bits: int = PIECE_BITS) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows of a dimension divisible by 8 -> (uint8 [rows, dimension * bits / 8]
    codes, float32 scale per row): each row scaled by its largest magnitude to
    -top..top (top = 2**(bits-1) - 1), stored as code + top in ``bits`` bits, little-endian,
    8 codes in ``bits`` bytes."""
    vectors = np.asarray(vectors, dtype=np.float32)
    rows, dimension = vectors.shape
    if dimension % 8:
        raise ValueError(f"{bits}-bit codes need a dimension divisible by 8, not {dimension}")
    top = (1 << (bits - 1)) - 1
    scales = np.abs(vectors).max(axis=1, initial=0.0) / top
    safe = np.where(scales > 0, scales, 1).astype(np.float32)
    codes = (np.rint(vectors / safe[:, None]).astype(np.int16) + top).astype(np.uint16).reshape(rows, dimension // 8, 8)
    packed = np.zeros((rows, dimension // 8, bits + 1), dtype=np.uint16)  # a spare byte: a code may end past the group
    for k in range(8):
        byte, shift = divmod(bits * k, 8)
        shifted = codes[:, :, k] << shift
        packed[:, :, byte] |= shifted & 0xFF
        packed[:, :, byte + 1] |= shifted >> 8
    return packed[:, :, :bits].astype(np.uint8).reshape(rows, dimension * bits // 8), scales.astype(np.float32)


def from_codes(packed: np.ndarray, bits: int = PIECE_BITS) -> np.ndarray:
    """The int8 codes (-top..top) of rows packed by :func:`to_codes`."""
    packed = np.asarray(packed, dtype=np.uint8)
    rows = packed.shape[0]
    size = packed.shape[1] // bits
    groups = np.zeros((rows, size, bits + 1), dtype=np.uint16)
    groups[:, :, :bits] = packed.reshape(rows, size, bits)
    codes = np.empty((rows, groups.shape[1], 8), dtype=np.int16)
    mask = (1 << bits) - 1
    for k in range(8):
        byte, shift = divmod(bits * k, 8)
        codes[:, :, k] = ((groups[:, :, byte] | (groups[:, :, byte + 1] << 8)) >> shift) & mask
    codes -= (1 << (bits - 1)) - 1
    return codes.astype(np.int8).reshape(rows, size * 8)


def to_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows -> (int8 codes, float32 scale per row), each row scaled by its largest
    magnitude: ``codes * scale`` restores it within half a step (cosines within 2e-3)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1, initial=0.0) / 127
    safe = np.where(scales > 0, scales, 1).astype(np.float32)
    return np.rint(vectors / safe[:, None]).astype(np.int8), scales.astype(np.float32)


@dataclass(frozen=True)
class TermLayout:
    """A term row entry in ``width`` bytes: the id in the low ``id_bits``, the count - 1 in
    the rest (a larger count is stored as the largest that fits)."""

    id_bits: int
    width: int

    @property
    def max_count(self) -> int:
        return 1 << (8 * self.width - self.id_bits)


#: Hashed 4-grams: 20-bit buckets and counts to 16, 3 bytes.
NGRAM_TERMS = TermLayout(NGRAM_BUCKET_BITS, 3)
#: Vocabulary words: ids below 2**24 (16.7M words; their vectors alone would take 34 GB) and
#: counts to 256, 4 bytes.
WORD_TERMS = TermLayout(24, 4)


def pack_terms(ids: np.ndarray, counts: np.ndarray, layout: TermLayout) -> np.ndarray:
    """Term ids and their counts (>= 1) -> uint8 [terms, layout.width], little-endian."""
    ids = np.asarray(ids, dtype=np.uint32)
    if len(ids) and int(ids.max()) >= 1 << layout.id_bits:
        raise ValueError(f"a packed term id must be below 2**{layout.id_bits}, not {int(ids.max())}")
    counts = np.clip(np.asarray(counts, dtype=np.int64), 1, layout.max_count).astype(np.uint32) - 1
    word = ids | (counts << layout.id_bits)
    return word.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :layout.width].copy()


def unpack_terms(packed: np.ndarray, layout: TermLayout) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 ids, uint16 counts) of terms packed by :func:`pack_terms`."""
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1, layout.width)
    word = np.zeros((len(packed), 4), dtype=np.uint8)
    word[:, :layout.width] = packed
    word = word.view("<u4")[:, 0]
    return word & np.uint32((1 << layout.id_bits) - 1), ((word >> layout.id_bits) + 1).astype(np.uint16)
