"""The encoder interface: what every embedder must do, and the capabilities it may declare.

An embedder needs one thing, turning texts into unit vectors (:class:`Embedder`). Anything
more is a capability it declares in ``capabilities`` (:class:`Capabilities`) and provides as
a method, so callers ask ``capabilities(embedder).word_rarity`` instead of testing which
class it is; an embedder that declares nothing gets the plain paths (sentences encoded on
their own, no word table, the support threshold instead of word-level verification).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, TypeVar

import numpy as np

from ..types import Span

T = TypeVar("T")


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may differ."""

    #: What identifies the vectors' space: two embedders with the same id are interchangeable.
    id: str
    #: The name a user passes to select this embedder again (``--model``).
    model: str

    @property
    def dimension(self) -> int: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Capabilities:
    """What an embedder offers beyond encoding; each flag promises the method named."""

    #: ``sentence_encoder() -> SentenceEncoder``: one forward pass over a chunk gives its
    #: vector and an in-context vector for each of its sentences (half the encoder work).
    pooled_sentences: bool = False
    #: ``word_table() -> WholeWords``: standalone vectors of the words its tokenizer knows
    #: whole, computed once per machine (builds find their translations ahead of time).
    word_table: bool = False
    #: ``word_rarity(words) -> np.ndarray``: how rare each word is, in nats (answer
    #: verification weighs question words by it).
    word_rarity: bool = False


NO_CAPABILITIES = Capabilities()


def capabilities(embedder: Embedder) -> Capabilities:
    """What ``embedder`` declares (nothing, for a plain :class:`Embedder`)."""
    return getattr(embedder, "capabilities", NO_CAPABILITIES)


class SentenceEncoder(Protocol):
    """Encodes chunks and their sentence pieces: returns (chunk vectors, piece vectors in order)."""

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]: ...


class SeparateSentenceEncoder:
    """Chunks and pieces encoded as passages, each on its own (about twice the work)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        pieces = [text[a:b] for text, own in zip(texts, spans) for a, b in own]
        return self.embedder.encode_passages(list(texts)), self.embedder.encode_passages(pieces)


def word_table(embedder: Embedder):
    """The embedder's whole-word table (:class:`qa.encode.whole_words.WholeWords`) if it
    declares one, else None."""
    return embedder.word_table() if capabilities(embedder).word_table else None


def sentence_encoder(embedder: Embedder) -> SentenceEncoder:
    """The embedder's one-pass sentence encoder if it declares one, else sentences encoded
    separately."""
    if capabilities(embedder).pooled_sentences:
        return embedder.sentence_encoder()
    return SeparateSentenceEncoder(embedder)


def split_over_threads(count: int, workers: int, work: Callable[[int, int], T]) -> list[T]:
    """``work(start, end)`` over ``workers`` contiguous shares of ``range(count)``, in order.

    The shares run on Python threads, the first on the caller's: numpy releases the GIL in
    its matrix products, so single-BLAS-thread encoders overlap without BLAS spin-waiting.
    An exception in any share is raised here.
    """
    workers = max(1, min(workers, count))
    bounds = [count * i // workers for i in range(workers + 1)]
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work(bounds[i], bounds[i + 1])
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, workers)]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def normalised(vectors) -> np.ndarray:
    """``vectors`` as contiguous float32 rows of unit length (zero rows stay zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
