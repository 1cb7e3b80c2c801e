"""Where hybrid retrieval's time goes: per-stage medians of hybrid and dense ``retrieve``.

    python bench/latency_budget.py                 # en questions over the es pool, ~30 s idle
    python bench/latency_budget.py --questions es

The XQuAD-R pool is indexed once; then every question is traced in hybrid and in dense mode
(``Index.trace``, the library's supported hook: the seconds of each stage of a query), back
to back, alternating order, starting from an empty word cache as ``qa eval``'s latency
measurement does. It prints the median per-question hybrid/dense ratio of the traced total
and each stage's median time: encoding the question (and its unseen words), finding the
words' translations, the vector search, the re-ranking and reading the passages' rows.
Only ``retrieve`` is traced: ``ask`` also encodes the top chunk's clauses to pick the
sentence to quote (about 10 ms).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

STAGES = ("encode", "translations", "vector search", "re-ranking", "passages", "total")


def measure(index_dir: Path, questions: str) -> dict:
    """Per mode, each stage's median milliseconds; and the median per-question ratio."""
    from qa.api import Index
    from qa.eval.benchmark import TOP_K, load_benchmark

    index = Index(index_dir)
    index.trace("warm up the caches", k=TOP_K)
    index.trace("warm up the caches", k=TOP_K, mode="dense")
    timings: dict[str, list[dict[str, float]]] = {"hybrid": [], "dense": []}
    for i, q in enumerate(load_benchmark(questions, "es").questions):
        for mode in (("dense", "hybrid") if i % 2 == 0 else ("hybrid", "dense")):
            timings[mode].append(index.trace(q.text, k=TOP_K, mode=mode).timings)
    medians = {mode: {stage: 1000 * statistics.median(t.get(stage, 0.0) for t in traced) for stage in STAGES}
               for mode, traced in timings.items()}
    ratio = statistics.median(h["total"] / d["total"] for h, d in zip(timings["hybrid"], timings["dense"]))
    return {"ratio": ratio, "ms": medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", choices=("en", "es"), default="en")
    args = parser.parse_args()

    from qa import build_index
    from qa.eval.benchmark import load_benchmark

    with tempfile.TemporaryDirectory(prefix="qa-budget-") as work:
        docs, index_dir = Path(work) / "pool-es", Path(work) / "index-es"
        load_benchmark(args.questions, "es").write_articles(docs)
        build_index(docs, index_dir, progress=False)
        result = measure(index_dir, args.questions)
    print(f"{args.questions} questions -> es pool: hybrid/dense traced retrieve, median per-question ratio "
          f"{result['ratio']:.2f}x")
    print(f"  {'stage (median ms)':20s} {'hybrid':>8s} {'dense':>8s}")
    for stage in STAGES:
        print(f"  {stage:20s} {result['ms']['hybrid'][stage]:8.2f} {result['ms']['dense'][stage]:8.2f}")


if __name__ == "__main__":
    main()
