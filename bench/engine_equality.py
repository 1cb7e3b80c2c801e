"""Top-5 equality of an index on Milvus with the local index of the same documents (issue 16).

Builds the XQuAD-R pool of one language locally and on a Milvus engine (a Milvus Lite file by
default, or ``--uri``), asks every question of both languages of both indexes
(``Index.retrieve``, hybrid, k=5) and reports the share of questions whose top-5 chunk ids
are identical, in order, and the first differences::

    python bench/engine_equality.py [--pool es] [--articles 0-47] [--uri milvus://127.0.0.1:19530/eq]

Needs the ``milvus`` extra (``pip install -e ".[milvus]"``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qa  # noqa: E402
from qa.eval.benchmark import load_benchmark  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default="es")
    parser.add_argument("--questions", default="en,es")
    parser.add_argument("--articles", default=None, help="first-last article numbers (default: all)")
    parser.add_argument("--uri", default=None, help="default: a Milvus Lite file in a temporary folder")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    articles = None
    if args.articles:
        first, _, last = args.articles.partition("-")
        articles = range(int(first), int(last or first) + 1)
    with tempfile.TemporaryDirectory(prefix="qa-engine-eq-") as work:
        root = Path(work)
        pool = load_benchmark(args.pool, args.pool, articles=articles)
        pool.write_articles(root / "docs")
        started = time.perf_counter()
        qa.build_index(root / "docs", root / "local", progress=False)
        local_seconds = time.perf_counter() - started
        uri = args.uri or f"milvus-lite://{root / 'qa.db'}"
        started = time.perf_counter()
        report = qa.build_index(root / "docs", uri, progress=False)
        engine_seconds = time.perf_counter() - started
        local, engine = qa.load(root / "local"), qa.load(uri)
        result = {"pool": args.pool, "chunks": report.chunks, "local_build_s": round(local_seconds, 1),
                  "engine_build_and_publish_s": round(engine_seconds, 1), "uri": uri.split("://")[0], "pairs": {}}
        for language in args.questions.split(","):
            questions = load_benchmark(language, args.pool, articles=articles).questions
            same, differences = 0, []
            for q in questions:
                a = [h.chunk_id for h in local.retrieve(q.text, k=args.k)]
                b = [h.chunk_id for h in engine.retrieve(q.text, k=args.k)]
                same += a == b
                if a != b and len(differences) < 5:
                    differences.append({"question": q.text, "local": a, "engine": b})
            result["pairs"][f"{language}->{args.pool}"] = {
                "questions": len(questions), "identical_top5": same, "share": round(same / len(questions), 4),
                "first_differences": differences}
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
