"""One measurement in a fresh process, so that memory and start-up are its own.

    python bench/worker.py TASK JSON_ARGS     # prints one JSON object on its last line

Tasks: ``build`` (documents -> saved index), ``build-rows`` (the same with
:class:`HashedEmbedder`: every part of a build but the encoder, for build memory and size
at sizes the encoder would take hours to embed), ``store-build`` (the vector stage of a
first build alone), ``query`` (open, warm up, time retrieve and
ask, peak RSS, and hit@1/hit@5 when gold answer spans are given), ``peer-ask`` (the peer's
cold start: load and answer one question, printing the top passage), ``store-query`` (a qa
index: open time, latency, recall@10 against given exact rows).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # qa from this checkout

from pipelines import make  # noqa: E402


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM): a fresh process measures only itself."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]}


def timed(call, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        call(item)
        out.append(time.perf_counter() - start)
    return out


def build(args: dict) -> dict:
    pipeline = make(args["pipeline"])
    start = time.perf_counter()
    chunks = pipeline.build(Path(args["docs"]), Path(args["out"]))
    seconds = time.perf_counter() - start
    return {"chunks": chunks, "in_process_s": seconds, "peak_rss_mb": peak_rss_mb()}


class HashedEmbedder:
    """512-d unit vectors drawn from a seed hashed from each text: no model, so a build of a
    million chunks takes what chunking, lexical rows, the vocabulary, the vector index and the
    files take. Not for quality: similar texts get unrelated vectors."""

    id = "bench-hashed-512"
    model = "bench-hashed"
    dimension = 512

    def encode_passages(self, texts):
        import hashlib

        import numpy as np

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dimension, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    encode_queries = encode_passages


def build_rows(args: dict) -> dict:
    """A first build with :class:`HashedEmbedder`: seconds and peak RSS."""
    import qa

    start = time.perf_counter()
    report = qa.build_index(Path(args["docs"]), Path(args["out"]), model=HashedEmbedder(), progress=False)
    return {"chunks": report.chunks, "in_process_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def store_build(args: dict) -> dict:
    """The vector stage of a first build of ``n`` chunks: vectors spooled to a file as a build
    does, then the store made from it and saved. Seconds and peak RSS: the part of a build's
    memory that grows with the corpus."""
    import numpy as np

    from qa.store.row_files import GrowingRowFile, RowFile
    from qa.store.vectors.factory import create_vector_index

    n, dimension, out = args["n"], args.get("dimension", 512), Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)
    spool = GrowingRowFile(out / "vectors.spool.npy", np.float32, (dimension,))
    rng = np.random.default_rng(0)
    for start in range(0, n, 65_536):
        batch = rng.standard_normal((min(65_536, n - start), dimension), dtype=np.float32)
        spool.append(batch / np.linalg.norm(batch, axis=1, keepdims=True))
    spool.close()
    start = time.perf_counter()
    store = create_vector_index(RowFile(out / "vectors.spool.npy"), dimension)
    (out / "vectors.spool.npy").unlink()  # as a build does: only the index files remain
    store.save(out)
    return {"chunks": n, "store_s": time.perf_counter() - start, "factory": store.describe().get("factory", "flat"),
            "peak_rss_mb": peak_rss_mb()}


def query(args: dict) -> dict:
    """Open the index, warm up, time every question; with gold spans, also hit@1 and hit@5."""
    pipeline = make(args["pipeline"])
    questions = args["questions"]
    start = time.perf_counter()
    pipeline.open(Path(args["out"]))
    opened = time.perf_counter() - start
    warm = 20
    for q in questions[:warm]:
        pipeline.retrieve(q, 5)
    found: list = []
    seconds = timed(lambda q: found.append(pipeline.retrieve(q, 5)), questions)
    result = {"open_s": opened, "retrieve": percentiles(seconds[warm:])}
    if args.get("gold"):
        covered = [[s.source == g["source"] and s.start <= g["start"] and g["end"] <= s.end for s in spans]
                   for spans, g in zip(found, args["gold"])]
        result["hit@1"] = sum(bool(c[:1] and c[0]) for c in covered) / len(covered)
        result["hit@5"] = sum(any(c) for c in covered) / len(covered)
    if args.get("ask"):
        asked = questions[:args["ask"]]
        for q in asked[:warm]:
            pipeline.ask(q)
        result["ask"] = percentiles(timed(pipeline.ask, asked[warm:]))
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peer_ask(args: dict) -> dict:
    pipeline = make("peer")
    pipeline.open(Path(args["out"]))
    top = pipeline._store.similarity_search(args["question"], k=5)
    print(top[0].page_content)
    return {}


def store_query(args: dict) -> dict:
    """Open a qa index, time hybrid and dense retrieval and the bare vector search, score recall@10."""
    import numpy as np

    import qa

    start = time.perf_counter()
    index = qa.load(args["out"])
    opened = time.perf_counter() - start
    snapshot = index.snapshot()
    questions = args["questions"]
    vectors = snapshot.embedder.encode_queries(questions)
    exact = np.asarray(args["exact_rows"])
    rows = snapshot.generation.vectors.search(vectors, 10)[1]
    recall = float(np.mean([len(set(r) & set(e)) / 10 for r, e in zip(rows.tolist(), exact.tolist())]))
    warm = 20
    for q in questions[:warm]:
        index.retrieve(q, k=5)
    latency = timed(lambda q: index.retrieve(q, k=5), questions[warm:])
    dense = timed(lambda q: index.retrieve(q, k=5, mode="dense"), questions[warm:])
    search = timed(lambda v: snapshot.generation.vectors.search(v[None, :], 10), vectors[warm:])
    return {"open_s": opened, "recall@10": recall, "retrieve": percentiles(latency),
            "retrieve_dense": percentiles(dense), "search": percentiles(search), "peak_rss_mb": peak_rss_mb()}


TASKS = {"build": build, "build-rows": build_rows, "store-build": store_build, "query": query, "peer-ask": peer_ask, "store-query": store_query}

if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    outcome = TASKS[sys.argv[1]](json.loads(Path(sys.argv[2]).read_text()))
    print(json.dumps(outcome))
