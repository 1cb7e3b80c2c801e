"""How many bits do sentence-piece vectors need? Each stored codec against float32.

    python bench/piece_codes.py [--work DIR]

Piece vectors are ~42 % of an index's bytes (int8: 512 bytes a piece, 5.6 pieces a chunk),
so they decide whether an index reaches 5 KB a chunk. A piece's cosine with the question
picks the sentence an answer quotes and feeds the ranking (best piece, best window), so
the measure here is how often a codec changes **which piece of a chunk scores best** for a
question, over every chunk with more than one piece and every question: the change that
moved ``qa eval``'s answer_hit when 5-bit codes were tried (about 1 question in 200).

The reference is float32: the chunks and piece spans of the Spanish XQuAD-R pool (the
``qa eval`` pool, built here with the bundled encoder) encoded again without rounding; the
questions are XQuAD-R's 1,190 Spanish and 1,190 English ones. Bases (PCA) and per-dimension
scales are fitted on the first half of the chunks' pieces, as a build would fit them on the
rows it has seen.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import qa  # noqa: E402
from qa.encode.base import sentence_encoder  # noqa: E402
from qa.eval.benchmark import load_benchmark  # noqa: E402
from qa.store.codecs import to_int8  # noqa: E402


def per_vector(vectors: np.ndarray, bits: int) -> np.ndarray:
    """Uniform codes of ``bits`` bits, each vector scaled by its largest magnitude (as int8 is
    stored), decoded back to float32."""
    levels = 2 ** (bits - 1) - 1
    scales = np.abs(vectors).max(axis=1) / levels
    return np.rint(vectors / scales[:, None]) * scales[:, None]


def per_dimension(vectors: np.ndarray, bits: int, fitted: np.ndarray) -> np.ndarray:
    """Uniform codes with one scale per dimension, from the largest magnitude in ``fitted``."""
    levels = 2 ** (bits - 1) - 1
    scales = np.abs(fitted).max(axis=0) / levels
    return np.clip(np.rint(vectors / scales), -levels, levels) * scales


def rotated(vectors: np.ndarray, bits: int, seed: int = 0) -> np.ndarray:
    """Per-vector codes after a random orthogonal rotation (spreads outlying components)."""
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((vectors.shape[1],) * 2))
    return per_vector(vectors @ rotation, bits) @ rotation.T


def principal(vectors: np.ndarray, dims: int, fitted: np.ndarray) -> np.ndarray:
    """int8 codes of the first ``dims`` principal components of ``fitted``."""
    mean = fitted.mean(axis=0)
    basis = np.linalg.svd(fitted - mean, full_matrices=False)[2][:dims]
    codes, scales = to_int8((vectors - mean) @ basis.T)
    return (codes.astype(np.float32) * scales[:, None]) @ basis + mean


def best_piece_changes(reference: np.ndarray, decoded: np.ndarray, questions: np.ndarray, ptr: np.ndarray) -> float:
    """Share of (question, chunk with 2+ pieces) pairs whose best piece differs."""
    exact, approx = reference @ questions.T, decoded @ questions.T
    changed = total = 0
    for a, b in zip(ptr[:-1], ptr[1:]):
        if b - a > 1:
            changed += int((exact[a:b].argmax(axis=0) != approx[a:b].argmax(axis=0)).sum())
            total += questions.shape[0]
    return changed / total


def reference_pieces(index_dir: Path):
    """(float32 piece vectors, piece pointer per chunk, the index's embedder) of every chunk
    of ``index_dir``, encoded again from the stored chunk texts and piece spans."""
    snapshot = qa.load(index_dir).snapshot()
    generation = snapshot.generation
    rows = np.arange(generation.chunks.count(), dtype=np.int64)
    pieces, owner = generation.rows.pieces(rows)
    spans = generation.rows.piece_spans_of(pieces).tolist()
    chunk_spans = [[] for _ in rows]
    for o, (a, b) in zip(owner.tolist(), spans):
        chunk_spans[o].append((a, b))
    texts = [chunk.text for chunk in generation.chunks.get(rows.tolist())]
    _, vectors = sentence_encoder(snapshot.embedder).encode(texts, chunk_spans)
    ptr = np.concatenate([[0], np.cumsum([len(s) for s in chunk_spans])])
    return np.asarray(vectors, dtype=np.float32), ptr, snapshot.embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = options.work or Path(scratch)
        docs, index_dir = work / "pool-es", work / "index-es"
        load_benchmark("es", "es").write_articles(docs)
        qa.build_index(docs, index_dir, progress=False)
        reference, ptr, embedder = reference_pieces(index_dir)
    questions = np.asarray(embedder.encode_queries(
        [q.text for lang in ("es", "en") for q in load_benchmark(lang, "es").questions]), dtype=np.float32)
    fitted = reference[: ptr[len(ptr) // 2]]
    dim = reference.shape[1]
    bits = lambda b: dim * b // 8 + 4  # noqa: E731 - codes and a float32 scale
    codecs = {  # name: (bytes a piece, encode + decode)
        "int8, scale per vector (stored)": (bits(8), lambda v: per_vector(v, 8)),
        "6-bit, scale per vector": (bits(6), lambda v: per_vector(v, 6)),
        "5-bit, scale per vector": (bits(5), lambda v: per_vector(v, 5)),
        "4-bit, scale per vector": (bits(4), lambda v: per_vector(v, 4)),
        "5-bit after a random rotation": (bits(5), lambda v: rotated(v, 5)),
        "5-bit, scale per dimension": (dim * 5 // 8, lambda v: per_dimension(v, 5, fitted)),
        "6-bit, scale per dimension": (dim * 6 // 8, lambda v: per_dimension(v, 6, fitted)),
        "int8 of 256 principal components": (256 + 4, lambda v: principal(v, 256, fitted)),
        "int8 of 384 principal components": (384 + 4, lambda v: principal(v, 384, fitted)),
    }
    spread = np.abs(reference).max(axis=1) / reference.std(axis=1)
    print(f"{len(reference)} pieces of {len(ptr) - 1} chunks, {len(questions)} questions; largest |component| "
          f"{np.median(spread):.2f} standard deviations (median; a Gaussian vector of 512: ~3.2)")
    print("| codec | bytes a piece | best piece changes | cosine error (std) |")
    print("|---|---|---|---|")
    for name, (size, codec) in codecs.items():
        decoded = codec(reference)
        error = ((decoded - reference) @ questions.T).std()
        print(f"| {name} | {size} | {100 * best_piece_changes(reference, decoded, questions, ptr):.2f} % | {error:.5f} |")


if __name__ == "__main__":
    main()
