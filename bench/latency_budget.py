"""Where hybrid retrieval's extra time goes: the hybrid/dense latency ratio with parts removed.

    python bench/latency_budget.py                 # en questions over the es pool, ~30 s idle
    python bench/latency_budget.py --questions es

The XQuAD-R pool is indexed once; then, for each variant, a fresh process times every
question's hybrid and dense ``retrieve`` with ``qa.eval.benchmark.measure_latency``, the
measurement ``qa eval`` reports (back to back, alternating order, empty word cache), and
prints the median per-question ratio. Each variant removes one more part of the hybrid path
(replacing it with a no-op, so its results are wrong): what the ratio falls to tells what
that part costs. What is left after the last one is mostly fetching the rows of 50
candidates instead of 10. Only ``retrieve`` is timed: ``ask`` also encodes the top chunk's
clauses to pick the sentence to quote (about 10 ms). This is a diagnostic, not a product
mode.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from qa.store.ranking_rows import RankingRows
from qa.api import Index
from qa.search.translations import Translations

# Each variant removes the parts before it as well.
VARIANTS = {
    "full": "hybrid as shipped",
    "rank": "- re-ranking (dense order kept)",
    "neighbours": "- HNSW search of words without stored neighbours",
    "words": "- encoding those words",
    "terms": "- the question's n-grams and tokens",
}


def _remove(index: Index, variant: str) -> None:
    """Replace the parts of ``index``'s hybrid path up to ``variant`` with no-ops."""
    from qa.search import ranking as hybrid
    from qa.store.protocols import Neighbours

    removed = list(VARIANTS)[1:list(VARIANTS).index(variant) + 1]
    snapshot = index.snapshot()
    if "rank" in removed:
        def dense_order(features: RankingRows, vector: np.ndarray, terms: hybrid.QueryTerms, rows: np.ndarray, dense: np.ndarray,
                        weights: hybrid.Weights | None = None) -> hybrid.Ranking:
            none = np.empty(0, np.int64)
            return hybrid.Ranking(rows, dense, none, none, np.empty(0, np.float32), 0.0)
        hybrid.rank = dense_order
    if "neighbours" in removed:
        def no_neighbours(vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
            return [Neighbours((), ()) for _ in vectors]
        snapshot.vocabulary.neighbours = no_neighbours
    if "words" in removed:
        encode = snapshot.embedder.encode_queries

        def question_only(texts: list[str]) -> np.ndarray:
            vectors = np.zeros((len(texts), snapshot.embedder.dimension), dtype=np.float32)
            vectors[0] = encode(texts[:1])[0]
            return vectors
        snapshot.embedder.encode_queries = question_only
    if "terms" in removed:
        def no_terms(question: str, translations: Translations) -> hybrid.QueryTerms:
            return hybrid.QueryTerms(np.empty(0, np.uint32), np.empty(0, np.float32), np.empty(0, np.uint32),
                                     translations)
        hybrid.query_terms = no_terms


def measure(index_dir: Path, questions: str, variant: str) -> tuple[float, float, float]:
    """(median ratio, hybrid ms, dense ms) of one variant, in this process."""
    from qa.eval.benchmark import load_benchmark, measure_latency

    index = Index(index_dir)
    _remove(index, variant)
    return measure_latency(index, load_benchmark(questions, "es").questions)


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
    from qa.eval.benchmark import load_benchmark

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
