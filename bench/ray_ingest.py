"""Ingestion on Ray against ingestion in one process, in the same run: a real-text corpus built
into a fresh index here, then on a local Ray cluster with 1 and with 2 encoders.

    python bench/ray_ingest.py --chunks 1000        # needs pip install -e ".[ray]"

The cluster is started once before the timed builds (its start-up is reported apart), so
each figure is the build itself: reading, chunking, encoding and writing the generation.
Reports chunks/s per run (median of --runs) and the ratios to the one-process build and of 2
encoders to 1; states the CPU, since machines of this kind differ.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

import corpus  # noqa: E402
from formats import cpu  # noqa: E402


def _timed_build(docs: Path, work: Path, **options) -> tuple[float, int]:
    import qa

    index = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    report = qa.build_index(docs, index, progress=False, **options)
    return time.perf_counter() - started, report.chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1000, help="corpus size (chunks of 1000 characters)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        docs = work / "docs"
        corpus.write_sized_corpus(docs, args.chunks)
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        cluster_start = time.perf_counter() - started
        results: dict[str, dict] = {}
        try:
            for name, options in [("one process", {}), ("ray, 1 encoder", {"ray": "auto", "ray_workers": 1}),
                                  ("ray, 2 encoders", {"ray": "auto", "ray_workers": 2})]:
                timings = [_timed_build(docs, work, **options) for _ in range(args.runs)]
                seconds = statistics.median(t for t, _ in timings)
                chunks = timings[0][1]
                results[name] = {"seconds": round(seconds, 2), "chunks": chunks, "chunks_per_second": round(chunks / seconds, 1)}
        finally:
            ray.shutdown()
    base = results["one process"]["chunks_per_second"]
    summary = {
        "cpu": cpu(),
        "ray_cluster_start_seconds": round(cluster_start, 1),
        "builds": results,
        "ray_2_over_1_encoders": round(results["ray, 2 encoders"]["chunks_per_second"]
                                       / results["ray, 1 encoder"]["chunks_per_second"], 2),
        "ray_2_encoders_over_one_process": round(results["ray, 2 encoders"]["chunks_per_second"] / base, 2),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"CPU: {summary['cpu']}; Ray cluster start {summary['ray_cluster_start_seconds']} s")
    for name, r in results.items():
        print(f"{name:16} {r['chunks']:6} chunks  {r['seconds']:7.1f} s  {r['chunks_per_second']:6.1f} chunks/s")
    print(f"2 encoders / 1: {summary['ray_2_over_1_encoders']}x; Ray with 2 / one process: "
          f"{summary['ray_2_encoders_over_one_process']}x")


if __name__ == "__main__":
    main()
