"""The bundled encoder's whole-word table: which words it holds, its vectors, its cache file."""

from __future__ import annotations

import numpy as np
import pytest

from qa.text import lexical

from qa.encode import whole_words
from qa.encode.base import word_table
from qa.encode.sentence_transformers import SentenceTransformerEmbedder
from qa.encode.models import load_embedder


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """An empty per-user cache, and no table loaded in this process yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(whole_words, "_loaded", {})
    return tmp_path / "cache" / "qa"


def test_the_table_holds_the_tokenizers_words_in_lowercase_with_their_own_vectors():
    encoder = load_embedder(None)
    table = word_table(encoder)
    assert len(table.words) == len(set(table.words)) > 50_000 and table.vectors.dtype == np.float16
    known = set(table.words)
    assert {"weapons", "country", "jugador", "temporada", "krieg"} <= known  # en, es, de
    assert {"warsaw", "during"} <= known  # pieces "▁Warsaw", "▁During"; lowercase, they are two pieces
    assert "sacks" not in known  # "sack" + "s"
    sample = np.random.default_rng(0).choice(len(table.words), 200, replace=False).tolist()
    assert all(lexical.words(table.words[i]) == [table.words[i]] for i in sample)
    fresh = encoder.encode_queries([table.words[i] for i in sample])
    cosines = (table.vectors[sample].astype(np.float32) * fresh).sum(axis=1)
    assert cosines.min() > 0.999


def test_the_table_is_computed_once_and_a_damaged_copy_again(private_cache, monkeypatch):
    words = ["weapons", "country", "jugador"]
    monkeypatch.setattr(whole_words, "tokenizer_words", lambda encoder: words)  # a small table is as good here
    encoder = load_embedder(None)
    first = word_table(encoder)
    (stored,) = private_cache.glob("usem3-whole-words-*.npz")
    assert first.words == words
    monkeypatch.setattr(whole_words, "_loaded", {})  # as another process
    monkeypatch.setattr(whole_words, "tokenizer_words", lambda encoder: pytest.fail("recomputed"))
    again = word_table(encoder)
    assert again.words == words and np.array_equal(again.vectors, first.vectors)
    stored.write_bytes(stored.read_bytes()[:100])  # a damaged copy
    monkeypatch.setattr(whole_words, "_loaded", {})
    monkeypatch.setattr(whole_words, "tokenizer_words", lambda encoder: words)
    repaired = word_table(encoder)
    assert np.array_equal(repaired.vectors, first.vectors) and stored.stat().st_size > 100


def test_other_encoders_have_no_table(minilm_path):
    assert word_table(SentenceTransformerEmbedder(str(minilm_path))) is None


def test_words_in_the_table_are_not_encoded_again():
    encoder = load_embedder(None)
    table = word_table(encoder)
    asked = []

    def encode(words):
        asked.extend(words)
        return encoder.encode_queries(words)

    words = ["weapons", "sacks", "jugador", "credited"]
    vectors = table.encode(words, encode)
    assert asked == ["sacks", "credited"]  # not in the table: encoded, in order
    cosines = (vectors * encoder.encode_queries(words)).sum(axis=1)
    assert vectors.dtype == np.float32 and cosines.min() > 0.999
