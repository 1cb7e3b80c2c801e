"""Sentence pieces of chunks, and their vectors.

A chunk's *pieces* are its document's sentences clipped to the chunk (a sentence that
straddles two overlapping chunks is a piece of each). Piece vectors let retrieval score a
chunk by its best sentence and let the answerer pick the sentence to quote without
encoding anything at query time.

With the bundled encoder they cost no extra encoder work: USE multilingual sum-pools per
token features before its output head, so one forward pass over a chunk gives the chunk
vector (the same as encoding the chunk alone, cosine >= 0.9999) and, by pooling the tokens
of each piece's span, an in-context vector for every piece. In-context piece vectors also
rank better than sentences encoded alone. Mean-pooling sentence-transformers models get the
same from one pass (:mod:`qa.encode.token_pooling`); any other encoder encodes the pieces separately.
"""

from __future__ import annotations

import bisect
from typing import Protocol, Sequence

import numpy as np

from . import usem3_forward as use_forward
from .embedder import Embedder, SentenceTransformerEmbedder, UniversalSentenceEncoder, split_over_threads
from ..text.sentences import split_sentences
from .token_pooling import TokenPooledPieceEncoder, token_poolable
from ..types import Chunk

Span = tuple[int, int]


def piece_spans(text: str, chunks: Sequence[Chunk]) -> list[list[Span]]:
    """Per chunk, its pieces as ``(start, end)`` relative to the chunk, whitespace trimmed."""
    sentences = split_sentences(text)
    ends = [end for _, end in sentences]
    result = []
    for chunk in chunks:
        spans = []
        for i in range(bisect.bisect_right(ends, chunk.start), len(sentences)):  # no list copy per chunk
            start, end = sentences[i]
            if start >= chunk.end:
                break
            a, b = max(start, chunk.start), min(end, chunk.end)
            segment = text[a:b]
            left, right = len(segment) - len(segment.lstrip()), len(segment.rstrip())
            if right > left:
                spans.append((a - chunk.start + left, a - chunk.start + right))
        result.append(spans)
    return result


class PieceEncoder(Protocol):
    """Encodes chunks and their pieces: returns (chunk vectors, piece vectors in order)."""

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]: ...


def piece_encoder(embedder: Embedder) -> PieceEncoder:
    """A one-pass encoder for the bundled model and for mean-pooling sentence-transformers
    models (loads the model to tell); separate piece encoding for any other."""
    if isinstance(embedder, UniversalSentenceEncoder):
        return PooledPieceEncoder(embedder)
    if isinstance(embedder, SentenceTransformerEmbedder) and token_poolable(embedder.backend()):
        return TokenPooledPieceEncoder(embedder)
    return SeparatePieceEncoder(embedder)


class SeparatePieceEncoder:
    """Chunks and pieces encoded as passages, each on its own (about twice the work)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        pieces = [text[a:b] for text, own in zip(texts, spans) for a, b in own]
        return self.embedder.encode_passages(list(texts)), self.embedder.encode_passages(pieces)


class PooledPieceEncoder:
    """One USE forward pass per chunk gives the chunk vector and in-context piece vectors.

    The forward pass is :mod:`qa.encode.usem3_forward`'s; the test suite checks that chunk vectors
    equal ``USE.encode(chunk)``.
    """

    def __init__(self, embedder: UniversalSentenceEncoder) -> None:
        self.embedder = embedder

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        backend = self.embedder.backend()
        workers = self.embedder.threads if len(texts) >= self.embedder.bulk_texts else 1
        parts = split_over_threads(len(texts), workers,
                                   lambda a, b: self._encode_share(backend, texts[a:b], spans[a:b]))
        return np.vstack([chunks for chunks, _ in parts]), np.vstack([pieces for _, pieces in parts])

    def _encode_share(self, backend, texts: Sequence[str],
                      spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        sequences, bounds = zip(*(self._tokenize(backend, t, s) for t, s in zip(texts, spans))) if texts else ((), ())
        n_pieces = sum(len(b) for b in bounds)
        chunk_sums = np.zeros((len(texts), backend._feat_dim), dtype=np.float32)
        piece_sums = np.zeros((n_pieces, backend._feat_dim), dtype=np.float32)
        first_piece = np.cumsum([0] + [len(b) for b in bounds])
        self._pool(backend, sequences, bounds, first_piece, chunk_sums, piece_sums)
        chunk_tokens = np.array([len(s) for s in sequences], dtype=np.int64)
        piece_tokens = np.array([max(1, b - a) for own in bounds for a, b in own], dtype=np.int64)
        return use_forward.head(backend, chunk_sums, chunk_tokens), use_forward.head(backend, piece_sums, piece_tokens)

    def _tokenize(self, backend, text: str, spans: Sequence[Span]) -> tuple[list[int], list[Span]]:
        """Token ids of ``text`` (with BOS/EOS), tokenised piece by piece, and each piece's token span."""
        encode = backend.sp.encode
        ids, bounds, cursor = [use_forward.BOS], [], 0
        for start, end in spans:
            if text[cursor:start].strip():
                ids += encode(text[cursor:start], out_type=int, add_bos=False, add_eos=False)
            piece = encode(text[start:end], out_type=int, add_bos=False, add_eos=False)
            bounds.append((len(ids), len(ids) + len(piece)))
            ids += piece
            cursor = end
        if text[cursor:].strip():
            ids += encode(text[cursor:], out_type=int, add_bos=False, add_eos=False)
        ids.append(use_forward.EOS)
        return ids, bounds

    def _pool(self, backend, sequences, bounds, first_piece, chunk_sums, piece_sums) -> None:
        """Sum token features over each chunk and each piece, one micro-batch at a time."""
        for batch in use_forward.micro_batches([len(s) for s in sequences]):
            self._pool_group(backend, list(batch), sequences, bounds, first_piece, chunk_sums, piece_sums)

    def _pool_group(self, backend, group, sequences, bounds, first_piece, chunk_sums, piece_sums) -> None:
        lengths = [len(sequences[i]) for i in group]
        offsets = np.cumsum([0] + lengths)
        features = use_forward.token_features(backend, [sequences[i] for i in group])
        # Cut the flat token axis at every chunk start and every piece start and end: pieces
        # do not overlap, so each piece is exactly one segment and a chunk is a run of them.
        cuts = set(offsets[:-1].tolist())
        for k, i in enumerate(group):
            for a, b in bounds[i]:
                cuts.update((offsets[k] + a, offsets[k] + b))
        cuts = np.array(sorted(c for c in cuts if c < offsets[-1]), dtype=np.int64)
        segments = np.add.reduceat(features, cuts, axis=0)
        chunk_of_segment = np.searchsorted(offsets, cuts, side="right") - 1
        first_segment = np.searchsorted(chunk_of_segment, np.arange(len(group)))
        chunk_sums[group] = np.add.reduceat(segments, first_segment, axis=0)
        segment_at = {int(c): s for s, c in enumerate(cuts)}
        for k, i in enumerate(group):
            for q, (a, b) in enumerate(bounds[i]):
                if b > a:
                    piece_sums[first_piece[i] + q] = segments[segment_at[int(offsets[k] + a)]]
