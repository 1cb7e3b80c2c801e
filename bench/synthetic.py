"""A 1M-chunk qa index made of synthetic vectors derived from real ones, for the store alone.

Independent Gaussian vectors have no neighbourhoods in 512 dimensions (the exact top-10
are within 0.02 of each other), so no approximate index can find them and they say nothing
about real corpora. Each synthetic row is instead ``normalise((1-t)·b + t·n + 0.6·ε)``: b a
real chunk vector, n one of b's 10 nearest real neighbours, t ~ U(0, 0.5), and ε noise with
the real vectors' covariance. The scale study found such data slightly harder for IVF than
the real vectors it comes from, so recall figures are not flattered.

Synthetic row ``i`` is derived from real row ``i mod R`` and carries that row's text, sentence
pieces, lexical rows and language profile (copied from the real index, whose vocabulary it
shares), so hybrid re-ranking reads rows of realistic size and the index on disk has the
size a real one of that many chunks would have.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from qa.store.chunk_table import CHUNKS_FILE, ChunkTable, write_chunks
from qa.store.ranking_rows import LEXICAL_STATS_FILE, RankingRows, SegmentRows, SegmentRowWriter
from qa.store.document_table import DocumentDict
from qa.store.manifest import MANIFEST_FILE, Manifest
from qa.store.segments import SegmentEntry, segment_name, write_deleted
from qa.store.neighbour_table import NEIGHBOURS_FILE
from qa.store.vocabulary import RECENT_VECTORS_FILE, VOCABULARY_FILE, WORD_VECTORS_FILE
from qa.store.folder import IndexDirectory
from qa.store.vectors.factory import create_vector_index
from qa.store.vectors.flat import FlatIndex
from qa.store.vectors.ivf_sq8 import IvfSq8Index
from qa.types import Chunk, IndexedDocument

#: chunks per stand-in document: the real-text corpora hold ~7 per file (84,587 chunks in 11,856
#: files at 100k), so a synthetic 1M index has the ~140,000 files a real folder of 1M chunks
#: would, and an update scans and lists them as it would there
CHUNKS_PER_DOCUMENT = 7


def write_documents(folder: Path, n: int, per_document: int = CHUNKS_PER_DOCUMENT) -> None:
    """A documents folder the synthetic index of ``n`` chunks takes for its own: each file's
    bytes hash to the id its manifest entry holds, so builds find every document unchanged and
    an added or removed file is a one-document update (bench/update_cost.py). Files go a
    thousand to a subfolder, as a large collection is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(-(-n // per_document)):
        path = folder / _document_name(d)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"synthetic-{d}".encode())


def _document_name(d: int) -> str:
    return f"part-{d // 1000:04d}/doc-{d:07d}.txt"


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
        base = np.arange(start, start + m) % len(real)  # row i carries real row i mod R's text
        near = neighbours[base, rng.integers(0, 10, m)]
        t = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        rows = (1 - t) * real[base] + t * real[near] + 0.6 * (rng.standard_normal((m, real.shape[1]),
                                                                                dtype=np.float32) @ shape.T)
        out[start:start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def write_index(index_dir: Path, vectors: np.ndarray, source: Path,
                per_document: int = CHUNKS_PER_DOCUMENT) -> FlatIndex | IvfSq8Index:
    """Commit a qa index generation of one segment holding ``vectors``, row ``i`` taking
    everything but its vector from row ``i mod R`` of the real generation folder ``source`` (R
    rows, one segment: a fresh build), in stand-in documents of ``per_document`` rows."""
    directory = IndexDirectory(index_dir)
    n = len(vectors)
    manifest_path = source / MANIFEST_FILE
    real_manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), str(manifest_path), source)
    (real_segment,) = real_manifest.segments
    real_chunks = ChunkTable(source / real_segment.name / CHUNKS_FILE)
    real = real_chunks.get(list(range(real_chunks.count())))
    cycle = np.arange(n, dtype=np.int64) % len(real)
    doc_ids = [hashlib.sha256(f"synthetic-{d}".encode()).hexdigest() for d in range(-(-n // per_document))]
    documents = {_document_name(d): IndexedDocument(_document_name(d), doc_id, min(per_document, n - d * per_document),
                                                    0, "synthetic")
                 for d, doc_id in enumerate(doc_ids)}
    with directory.write_lock():
        workspace = directory.new_workspace()
        segment = workspace / segment_name(1)
        segment.mkdir()
        try:
            rows = (Chunk(f"c{i}", doc_ids[i // per_document], real[r].start, real[r].end, None, real[r].text)
                    for i, r in enumerate(cycle.tolist()))
            write_chunks(segment / CHUNKS_FILE, rows)
            store = create_vector_index(vectors, vectors.shape[1])
            store.save(segment)
            _write_features(workspace, segment, source / real_segment.name, source, cycle)
            write_deleted(workspace, [])
        except BaseException:
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        manifest = Manifest(embedder=real_manifest.embedder, chunking=real_manifest.chunking,
                            vector_index=store.describe(), documents=DocumentDict(documents), chunks=n,
                            docs_dir="synthetic", built_at="synthetic",
                            segments=[SegmentEntry(segment.name, n, store.describe())])
        directory.commit(workspace, manifest)
    return store


def _write_features(workspace: Path, segment: Path, real_segment: Path, source: Path, cycle: np.ndarray) -> None:
    """The per-row artifacts of the real segment repeated along ``cycle``, with its vocabulary;
    document frequencies and totals count every repetition, as a real index of these rows would."""
    real = RankingRows(source, [SegmentRows(real_segment)])
    (real_rows,) = real.segments
    # every real row recurs, so the words in use, and so the stored neighbours, are the same
    for name in (VOCABULARY_FILE, WORD_VECTORS_FILE, RECENT_VECTORS_FILE, NEIGHBOURS_FILE):
        if (source / name).exists():  # an index built before words were kept apart has no recent ones
            shutil.copyfile(source / name, workspace / name)
    rows = SegmentRowWriter(segment, real_rows.dimension)
    rows.copy(real_rows, cycle)
    rows.finish()
    repeats, rest = divmod(len(cycle), real.rows)
    head = np.arange(rest, dtype=np.int64)  # rows 0..rest-1 recur once more
    partial = real.totals_of(head)
    stats = {"rows": len(cycle), "pieces": real.piece_total * repeats + partial["pieces"],
             "ngram_length": real.ngrams.total_length * repeats + partial["ngram_length"],
             "word_length": real.words.total_length * repeats + partial["word_length"]}
    (workspace / LEXICAL_STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
    for name in ("ngram", "word"):
        df = getattr(real, f"{name}s").df.astype(np.int64) * repeats
        df += np.bincount(real.term_ids_of(name, head), minlength=len(df))[:len(df)]
        np.save(workspace / f"{name}_df.npy", df.astype(np.int32), allow_pickle=False)
