"""A 1M-chunk qa index made of synthetic vectors derived from real ones, for the store alone.

Independent Gaussian vectors have no neighbourhoods in 512 dimensions (the exact top-10
are within 0.02 of each other), so no approximate index can find them and they say nothing
about real corpora. Each synthetic row is instead ``normalise((1-t)·b + t·n + 0.6·ε)``: b a
real chunk vector, n one of b's 10 nearest real neighbours, t ~ U(0, 0.5), and ε noise with
the real vectors' covariance. The scale study found such data slightly harder for IVF than
the real vectors it comes from, so recall figures are not flattered.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from qa.chunkdb import CHUNKS_FILE, StoredChunk, write_chunks
from qa.manifest import DocumentEntry, Manifest
from qa.storage import IndexDirectory
from qa.store import VectorStore

CHUNKS_PER_DOCUMENT = 1000


def derived_vectors(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` normalised float32 rows, the first ``len(real)`` of them the real ones."""
    rng = np.random.default_rng(seed)
    real = np.asarray(real, dtype=np.float32)
    neighbours = np.argsort(-(real @ real.T), axis=1)[:, 1:11]
    covariance = np.cov(real, rowvar=False)
    values, axes = np.linalg.eigh(covariance)
    shape = (axes * np.sqrt(np.clip(values, 0, None))).astype(np.float32)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:len(real)] = real
    for start in range(len(real), n, 100_000):
        m = min(100_000, n - start)
        base = rng.integers(0, len(real), m)
        near = neighbours[base, rng.integers(0, 10, m)]
        t = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        rows = (1 - t) * real[base] + t * real[near] + 0.6 * (rng.standard_normal((m, real.shape[1]),
                                                                                dtype=np.float32) @ shape.T)
        out[start:start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def write_index(index_dir: Path, vectors: np.ndarray, texts: list[str], embedder: dict) -> VectorStore:
    """Commit a qa index generation holding ``vectors`` and chunk rows cycling ``texts``."""
    directory = IndexDirectory(index_dir)
    n = len(vectors)
    doc_ids = [hashlib.sha256(f"synthetic-{d}".encode()).hexdigest() for d in range(-(-n // CHUNKS_PER_DOCUMENT))]
    with directory.write_lock():
        workspace = directory.new_workspace()
        rows = (StoredChunk(i, f"c{i}", doc_ids[i // CHUNKS_PER_DOCUMENT], 0, len(texts[i % len(texts)]), None,
                            texts[i % len(texts)]) for i in range(n))
        write_chunks(workspace / CHUNKS_FILE, rows)
        store = VectorStore.create(vectors, vectors.shape[1])
        store.save(workspace)
        documents = {f"doc-{d:05d}.txt": DocumentEntry(doc_id, min(CHUNKS_PER_DOCUMENT, n - d * CHUNKS_PER_DOCUMENT),
                                                       0, "synthetic")
                     for d, doc_id in enumerate(doc_ids)}
        manifest = Manifest(embedder=embedder, chunking={"size": 1000, "overlap": 143},
                            vector_index=store.describe(), documents=documents, chunks=n,
                            docs_dir="synthetic", built_at="synthetic")
        directory.commit(workspace, manifest)
    return store
