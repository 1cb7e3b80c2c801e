"""The sentence pieces of chunks.

A chunk's *pieces* are its document's sentences clipped to the chunk (a sentence that
straddles two overlapping chunks is a piece of each). Piece vectors let retrieval score a
chunk by its best sentence and let the answerer pick the sentence to quote without
encoding anything at query time; the encoders make them (:func:`qa.encode.base.sentence_encoder`).
In qa, "piece" always means such a sentence span (SentencePiece's units are called tokens).
"""

from __future__ import annotations

import bisect
from typing import Sequence

from ..text.sentences import split_sentences
from ..types import Chunk, Span


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
