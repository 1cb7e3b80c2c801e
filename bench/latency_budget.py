"""Where hybrid retrieval's extra time goes: the hybrid/dense latency ratio with parts removed.

    python bench/latency_budget.py                 # en questions over the es pool, ~2 min idle
    python bench/latency_budget.py --questions es

The XQuAD-R pool is indexed once; then, for each variant, a fresh process times every
question's hybrid ``retrieve`` and dense ``retrieve`` back to back, in alternating order and
from an empty word cache, exactly as ``qa eval`` does, and prints the median per-question
ratio. Each variant removes one more part of the hybrid path (replacing it with a no-op, so
its results are wrong): what the ratio falls to tells what that part costs. This is a
diagnostic, not a product mode.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Each variant removes the parts before it as well.
VARIANTS = {
    "full": "hybrid as shipped",
    "rank": "- re-ranking (dense order kept)",
    "neighbours": "- HNSW search of the question's words",
    "words": "- encoding the words the vocabulary lacks",
    "terms": "- the question's n-grams and tokens",
}


def _remove(index, variant: str) -> None:
    """Replace the parts of ``index``'s hybrid path up to ``variant`` with no-ops."""
    from qa import hybrid
    from qa.vocabulary import Neighbours

    removed = list(VARIANTS)[1:list(VARIANTS).index(variant) + 1]
    snapshot = index.snapshot()
    if "rank" in removed:
        def dense_order(features, vector, terms, rows, dense, weights=None):
            none = np.empty(0, np.int64)
            return hybrid.Ranking(rows, dense, none, none, np.empty(0, np.float32))
        hybrid.rank = dense_order
    if "neighbours" in removed:
        snapshot.vocabulary.neighbours = lambda vectors, in_use: [Neighbours((), ()) for _ in vectors]
    if "words" in removed:
        encode = snapshot.embedder.encode_queries

        def question_only(texts):
            vectors = np.zeros((len(texts), snapshot.embedder.dimension), dtype=np.float32)
            vectors[0] = encode(texts[:1])[0]
            return vectors
        snapshot.embedder.encode_queries = question_only
    if "terms" in removed:
        hybrid.query_terms = lambda question, translations: hybrid.QueryTerms(
            np.empty(0, np.uint32), np.empty(0, np.float32), np.empty(0, np.uint32), translations)


def measure(index_dir: Path, questions: str, variant: str) -> tuple[float, float, float]:
    """(median ratio, hybrid ms, dense ms) of one variant, in this process."""
    from qa.evaluation import TOP_K, load_benchmark
    from qa.retrieval import Index

    index = Index(index_dir)
    _remove(index, variant)
    index.retrieve("warm up the caches", k=TOP_K)
    index.retrieve("warm up the caches", k=TOP_K, mode="dense")
    hybrid_times, dense_times = [], []
    for i, question in enumerate(load_benchmark(questions, "es").questions):
        timed = {}
        for mode in (("dense", "hybrid") if i % 2 == 0 else ("hybrid", "dense")):
            started = time.perf_counter()
            index.retrieve(question.text, k=TOP_K, mode=mode)
            timed[mode] = time.perf_counter() - started
        hybrid_times.append(timed["hybrid"])
        dense_times.append(timed["dense"])
    ratio = statistics.median(h / d for h, d in zip(hybrid_times, dense_times))
    return ratio, 1000 * statistics.median(hybrid_times), 1000 * statistics.median(dense_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", choices=("en", "es"), default="en")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)  # one worker process
    parser.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(*measure(args.index_dir, args.questions, args.variant))
        return

    from qa import build_index
    from qa.evaluation import load_benchmark

    with tempfile.TemporaryDirectory(prefix="qa-budget-") as work:
        docs, index_dir = Path(work) / "pool-es", Path(work) / "index-es"
        load_benchmark(args.questions, "es").write_articles(docs)
        build_index(docs, index_dir, progress=False)
        print(f"{args.questions} questions -> es pool: hybrid/dense retrieve, median per-question ratio")
        for variant, label in VARIANTS.items():
            out = subprocess.run([sys.executable, __file__, "--questions", args.questions, "--variant", variant,
                                  "--index-dir", str(index_dir)], capture_output=True, text=True, check=True)
            ratio, hybrid_ms, dense_ms = map(float, out.stdout.split())
            print(f"  {label:45s} {ratio:5.2f}x  (hybrid {hybrid_ms:.2f} ms, dense {dense_ms:.2f} ms)")


if __name__ == "__main__":
    main()
