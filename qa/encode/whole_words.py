"""The bundled encoder's vectors of the words its tokenizer knows whole, computed once per machine.

The encoder's SentencePiece vocabulary has a token for many whole words of its 16 languages
("drones", "jugador", "Warsaw"). Their lowercase forms, as :func:`qa.text.lexical.words` yields
them, are 55,372 words; each is encoded alone once, the way model2vec distils static word
vectors from a sentence encoder, and kept. They cover 89 % of the English question words
that an index of Spanish text has never seen (XQuAD-R). Index builds use the table to find
those words' translations ahead of time (:mod:`qa.store.neighbour_table`), so a question made of
them needs neither word encoding nor a graph search.

The table takes about 5 s of both cores to compute and 60 MB (float16, the precision the
vocabulary graph stores word vectors in) under :func:`qa.machine.cache_dir`. It is written
under a temporary name and renamed, so a reader never sees half a file; a damaged one is
computed again. Its name carries the encoder's weight file's size and modification time
and the table's format, so an upgraded package or a change to what counts as a word
gets a new table.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..text import lexical
from ..machine import cache_dir
from .usem3_files import resources

# Bump when the choice of words (lexical.words) or the encoding changes.
_FORMAT = 2
_lock = threading.Lock()
_loaded: dict[Path, WholeWords] = {}


@dataclass(frozen=True)
class WholeWords:
    """Words and their standalone vectors (float16 rows, unit length before rounding)."""

    words: list[str]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", {word: row for row, word in enumerate(self.words)})

    @cached_property
    def vectors32(self) -> np.ndarray:
        """The vectors as float32, converted once per process (113 MB): an update compares
        every whole word with its new words, and converting them each time took most of it."""
        return self.vectors.astype(np.float32)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the words and their vectors: what a build's stored neighbours of them
        were found from, so that an update can tell whether they still hold."""
        digest = hashlib.sha256("\n".join(self.words).encode("utf-8"))
        digest.update(np.ascontiguousarray(self.vectors).tobytes())
        return digest.hexdigest()

    def prepare_for_updates(self) -> None:
        """Compute now what every index update reads (the float32 vectors and the digest):
        a long-running process (the app) does it before its first upload instead of during
        it (1.1 s of a first upload into a 100k-chunk index, measured under load)."""
        self.vectors32, self.digest  # noqa: B018 (cached properties, computed on first read)

    def encode(self, words: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``words``: the table's where it has the word, ``encode``'s for the others
        (float32; a build's vocabulary graph stores them as float16 again)."""
        rows = np.array([self._rows.get(word, -1) for word in words], dtype=np.int64)
        known = rows >= 0
        vectors = np.empty((len(words), self.vectors.shape[1]), dtype=np.float32)
        vectors[known] = self.vectors[rows[known]]
        if not known.all():
            vectors[~known] = encode([word for word, row in zip(words, rows.tolist()) if row < 0])
        return vectors


def whole_word_table(embedder) -> WholeWords:
    """The whole-word table of the bundled encoder (:class:`qa.encode.usem3.UniversalSentenceEncoder`),
    read from the cache or computed once (other encoders declare no word table:
    :func:`qa.encode.base.word_table`)."""
    weights = (resources() / "weights.npz").stat()
    path = cache_dir() / f"usem3-whole-words-v{_FORMAT}-{weights.st_size}-{weights.st_mtime_ns}.npz"
    with _lock:  # one computation per process, however many builds run at once
        if path not in _loaded:
            _loaded[path] = _read(path) or _compute(embedder, path)
        return _loaded[path]


def tokenizer_words(embedder) -> list[str]:
    """The vocabulary words (:func:`qa.text.lexical.words`) that the bundled encoder's
    SentencePiece tokenizer has as a token of their own, in any case ("drones", and "warsaw"
    from "Warsaw"), each once."""
    tokenizer = embedder.backend().sentencepiece()
    found: dict[str, None] = {}
    for token_id in range(tokenizer.get_piece_size()):
        token = tokenizer.id_to_piece(token_id)
        word = token[1:].lower()  # "▁" marks a token that starts a word
        if token.startswith("▁") and lexical.words(word) == [word]:
            found[word] = None
    return list(found)


def _read(path: Path) -> WholeWords | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return WholeWords(stored["words"].tolist(), stored["vectors"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # absent or damaged: compute it again
        return None


def _compute(embedder, path: Path) -> WholeWords:
    words = tokenizer_words(embedder)
    table = WholeWords(words, embedder.encode_queries(words).astype(np.float16))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("usem3-whole-words-*"):  # other versions and damaged copies
            old.unlink(missing_ok=True)
        pending = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(pending, words=np.array(words), vectors=table.vectors)
        os.replace(pending, path)
    except OSError:  # a read-only cache: the table lives for this process only
        pass
    return table
