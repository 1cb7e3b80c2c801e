"""Encoding a build's new documents on a Ray cluster (``qa index --ray ADDRESS``).

The build still decides here what changed (it hashes the folder's files and plans each new
document's chunks and sentence pieces); Ray Data then sends each new document, as JSON (its
file, content id, chunk offsets and pieces: data, never pickled objects of ours), to a pool of
actors, one encoder per worker. Each actor reads the file again, checks its content id, cuts
the planned chunks and encodes them with their pieces, its BLAS work on the CPUs Ray gave it.
The encoded chunks come back in document order and the build writes them exactly as it writes
its own, so a generation built on Ray equals one built here (tested).

Ray is imported only by the functions of this module, and only when ``--ray`` is given. Every
node needs qa installed and the documents folder readable at the same path (a shared
filesystem); see docs/operators.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .. import errors
from ..errors import QAError, RayError
from ..ingest.ocr import OcrSettings
from ..machine import usable_cores
from .new_documents import EncodedBatch, NewDocument, chunk_of, provenance_json


@dataclass(frozen=True)
class RayCluster:
    """Where to encode: a Ray cluster's ``address`` (``auto``: the cluster this machine
    belongs to, as Ray reads it, or else one started on this machine for the build, with a CPU
    per usable core) and how many encoders to run (default: one per CPU
    of the cluster, each encoding on one thread, the fastest split measured: see README)."""

    address: str
    workers: int | None = None

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise RayError("--ray needs a Ray cluster's address, or auto for a local one")
        if self.workers is not None and self.workers < 1:
            raise RayError(f"--ray-workers must be at least 1, got {self.workers}")


def encode_on_ray(documents: list[NewDocument], model: str, cluster: RayCluster, *, ocr: OcrSettings,
                  max_file_bytes: int, batch_size: int) -> Iterator[EncodedBatch]:
    """The chunks of ``documents``, encoded by ``model`` on Ray workers, ``batch_size`` at a
    time and in document order. A document that fails on a worker raises its own error here
    (a :class:`~qa.errors.DocumentError` names the file), and the build writes nothing."""
    if not documents:
        return
    ray = _import_ray()
    started_here = _connect(ray, cluster.address)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = min(cluster.workers or cpus, len(documents))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the chunk table's order is the rows' order
        context.enable_progress_bars = False  # the build shows its own bar
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # not a line per dataset run
        encoded = ray.data.from_items([{"document": d.to_json()} for d in documents]).map_batches(
            ChunkEncoder, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=max(1, cpus // workers),
            fn_constructor_kwargs={"model": model, "threads": max(1, cpus // workers),
                                   "ocr_languages": ocr.languages, "max_file_bytes": max_file_bytes},
        )
        try:
            for batch in encoded.iter_batches(batch_size=batch_size, batch_format="numpy"):
                yield _batch_of(batch)
        except ray.exceptions.RayTaskError as exc:
            raise RayError(f"a Ray worker failed: {str(exc).strip().splitlines()[0]}") from exc
    finally:
        if started_here:
            ray.shutdown()


class ChunkEncoder:
    """A Ray Data actor: one encoder, loaded once, encoding one document per call."""

    def __init__(self, model: str, threads: int, ocr_languages: str | None, max_file_bytes: int) -> None:
        from ..encode.base import sentence_encoder
        from ..encode.models import worker_embedder
        from ..ingest.attachments import AttachedFiles

        embedder = worker_embedder(model, threads)
        self.encoder = sentence_encoder(embedder)
        self.dimension = embedder.dimension
        self.ocr = OcrSettings(languages=ocr_languages)
        self.attached = AttachedFiles(max_file_bytes)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts, provenance, spans, vectors, pieces, profiles, errors = [], [], [], [], [], [], []
        for described in batch["document"]:
            document = NewDocument.from_json(str(described))
            try:
                chunks = list(document.chunks(self.ocr, self.attached))
            except QAError as exc:
                # Ray passes a worker's exception on as text only: send the error as data (one
                # row), so that the build raises the same error here (a DocumentError naming the file)
                texts.append("")
                provenance.append("")
                spans.append(np.zeros((0, 2), np.int32))
                vectors.append(np.zeros((1, self.dimension), np.float32))
                pieces.append(np.zeros((0, self.dimension), np.float32))
                profiles.append(document.profile)
                errors.append(f"{type(exc).__name__}\t{exc}")
                continue
            if not chunks:
                continue
            chunk_texts = [chunk.text for chunk, _ in chunks]
            chunk_spans = [own for _, own in chunks]
            chunk_vectors, piece_vectors = self.encoder.encode(chunk_texts, chunk_spans)
            texts += chunk_texts
            provenance += [provenance_json(chunk) for chunk, _ in chunks]
            spans += [np.array(own, dtype=np.int32).reshape(-1, 2) for own in chunk_spans]
            vectors.append(chunk_vectors)
            pieces += np.split(piece_vectors, np.cumsum([len(own) for own in chunk_spans])[:-1])
            profiles += [document.profile] * len(chunks)
            errors += [""] * len(chunks)
        return {
            "text": np.array(texts, dtype=object),
            "chunk": np.array(provenance, dtype=object),
            "piece_spans": _ragged(spans),
            "vector": np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, self.dimension), np.float32),
            "piece_vectors": _ragged(pieces),
            "profile": np.array(profiles, dtype=np.uint32),
            "error": np.array(errors, dtype=object),
        }


def _ragged(arrays: list[np.ndarray]) -> np.ndarray:
    """A column of arrays of different lengths (Ray Data stores it as a variable-shaped tensor)."""
    column = np.empty(len(arrays), dtype=object)
    column[:] = arrays
    return column


def _batch_of(batch: dict[str, np.ndarray]) -> EncodedBatch:
    failures = [str(e) for e in batch["error"] if e]
    if failures:
        name, message = failures[0].split("\t", 1)
        error = getattr(errors, name, None)
        raise (error if isinstance(error, type) and issubclass(error, QAError) else RayError)(message)
    vectors = np.asarray(batch["vector"], dtype=np.float32)
    pieces = [np.asarray(p, dtype=np.float32).reshape(-1, vectors.shape[1]) for p in batch["piece_vectors"]]
    return EncodedBatch(
        chunks=[chunk_of(str(p), str(t)) for p, t in zip(batch["chunk"], batch["text"])],
        piece_spans=[[(int(a), int(b)) for a, b in np.asarray(s).reshape(-1, 2).tolist()] for s in batch["piece_spans"]],
        chunk_vectors=vectors,
        piece_vectors=np.concatenate(pieces) if pieces else np.zeros((0, vectors.shape[1]), np.float32),
        profiles=np.asarray(batch["profile"], dtype=np.uint32),
    )


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a part of its own)
    except ImportError as exc:
        raise RayError('--ray needs Ray: pip install -e ".[ray]"') from exc
    return ray


def _connect(ray, address: str) -> bool:
    """Join the cluster at ``address`` (or start a local one for ``auto``); whether this
    process started it, and so must stop it."""
    if ray.is_initialized():
        return False
    try:
        if address == "auto":
            try:  # Ray's own meaning first: the cluster this machine already belongs to
                ray.init(address="auto", logging_level=logging.WARNING, log_to_driver=False)
            except ConnectionError:
                ray.init(num_cpus=usable_cores(), include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayError(f"cannot use the Ray cluster at {address}: {exc}") from exc
    return True
