"""Compact fixed-width encodings of per-row data, so one row is still read on its own.

Every codec keeps a fixed width per entry: a query reads the rows of its ~50 candidates
with one slice each, and a merge copies rows as bytes, never decoding them.

- Term rows as one fixed-width entry a term (:class:`TermLayout`): a hashed 4-gram in 3
  bytes, its 20-bit bucket and its count in 4 bits (a count past 16 counts 16; BM25's term
  frequency is saturated by then); a vocabulary word in 4 bytes, a 24-bit id and a count to 256.
- Sentence-piece vectors as int8 codes with a float32 scale per vector.

Measured and not taken (bench/disk_size.py, ``qa eval``; see the README's "Speed"): 4- and
5-bit piece codes, which change the sentence chosen from a passage's pieces often enough to
move the dense-only answer_hit by 0.4 to 0.65 points; and an int8 re-score copy of the chunk
vectors in place of the float16 one, which lost 1.1 points of recall@10 at 100k chunks.
Rotating, per-dimension scales and principal components do worse than the per-vector scale
at the same size (bench/piece_codes.py): these vectors are already flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..text.lexical import NGRAM_BUCKET_BITS

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
