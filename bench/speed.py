"""Speed and quality of qa against the usual LangChain pipeline, in one run.

    pip install -e ".[bench]"
    python bench/speed.py --quick          # XQuAD-R corpus (quality + speed, defaults), cold start: ~1 min idle
    python bench/speed.py                  # + real-text corpora of 1k, 10k, 100k chunks and the 1M store
    python bench/speed.py --json           # the raw figures as JSON instead of the tables
    python bench/speed.py --build-memory-only --build-memory-sizes 10000,100000,1000000
                                           # first-build peak RSS, chunks/s and bytes/chunk alone
    python bench/speed.py --store milvus   # the Milvus backend beside the local one, on a standalone
                                           # server started here: Ray ingestion at 1 and 2 encoders,
                                           # retrieve/ask p50/p95 at 10k (real) and 100k (synthetic)
                                           # chunks, one update's publish (bench/engine_speed.py)

Every figure is measured in this run, each in a fresh process (so peak RSS and start-up
are its own); indexes are built from the documents on disk every time (nothing cached).
Timings are medians; ratios are ours / peer, measured alternately in the same run. The
machine's load average is printed before and after: on a shared machine, read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO))  # qa from this checkout

import corpus  # noqa: E402

LATENCY_QUESTIONS = 220  # 20 warm-up + 200 timed
ASK_QUESTIONS = 220
COLD_RUNS = 5
COLD_QUESTION = "Who supplied drones to Russia?"
# Child processes: at most 2 BLAS/OpenMP threads (a 2-core machine), models offline.
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
NAMES = {"ours": "qa (bundled USE)", "ours-minilm": "qa --model MiniLM", "peer": "LangChain + MiniLM"}


def worker(task: str, args: dict, work: Path) -> tuple[dict, float]:
    """Run one measurement in a fresh process; its JSON result and wall-clock seconds."""
    spec = work / f"args-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps(args))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(BENCH / "worker.py"), task, str(spec)], env=ENV, cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"worker {task} {args.get('pipeline', '')} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure_corpus(label: str, docs: Path, questions: list[str], gold: list[dict] | None, pipelines: list[str],
                   runs: int, work: Path, log) -> dict:
    """Build each pipeline's index ``runs`` times from ``docs`` (alternating sides, so drifting
    load hits both alike), then open it in a fresh process and time ``questions``."""
    builds: dict[str, list[dict]] = {p: [] for p in pipelines}
    for run in range(runs):
        for name in pipelines:
            out = work / f"index-{name}-{label}"
            shutil.rmtree(out, ignore_errors=True)
            outcome, seconds = worker("build", {"pipeline": name, "docs": str(docs), "out": str(out)}, work)
            builds[name].append({**outcome, "wall_s": seconds, "size_bytes": du(out)})
            log(f"  {label} {NAMES[name]:<20} build {run + 1}/{runs}: {outcome['chunks']} chunks in {seconds:.1f} s")
    result = {"label": label, "documents": len(list(docs.iterdir())), "pipelines": {}}
    for name in pipelines:
        out = work / f"index-{name}-{label}"
        args = {"pipeline": name, "out": str(out), "questions": questions, "gold": gold,
                "ask": ASK_QUESTIONS if name == "ours" else 0}
        query, _ = worker("query", args, work)
        wall = median([b["wall_s"] for b in builds[name]])
        chunks = builds[name][0]["chunks"]
        result["pipelines"][name] = {
            "chunks": chunks, "build_runs": runs, "build_s": wall, "chunks_per_s": chunks / wall,
            "build_peak_rss_mb": max(b["peak_rss_mb"] for b in builds[name]),
            "size_mb": builds[name][-1]["size_bytes"] / 1e6, **{f"query_{k}": v for k, v in query.items()},
        }
        log(f"  {label} {NAMES[name]:<20} retrieve p50 {query['retrieve']['p50_ms']:.1f} ms, "
            f"RSS {query['peak_rss_mb']:.0f} MB" + (f", hit@5 {query['hit@5']:.3f}" if gold else ""))
    return result


def measure_cold_start(work: Path, runs: int, log) -> dict:
    """A fresh process answering one question on an index of the seed article, to the printed answer."""
    for name in ("ours", "peer"):
        out = work / f"index-{name}-seeds"
        shutil.rmtree(out, ignore_errors=True)
        worker("build", {"pipeline": name, "docs": str(REPO / "seeds"), "out": str(out)}, work)
    commands = {
        "ours": [sys.executable, "-m", "qa.cli", "ask", COLD_QUESTION, "--index-dir", str(work / "index-ours-seeds")],
        "peer": [sys.executable, str(BENCH / "worker.py"), "peer-ask", None],
    }
    spec = work / "peer-ask.json"
    spec.write_text(json.dumps({"out": str(work / "index-peer-seeds"), "question": COLD_QUESTION}))
    commands["peer"][-1] = str(spec)
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, env=ENV, cwd=REPO, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    result = {name: {"median_s": median(t), "runs": t} for name, t in times.items()}
    log(f"  cold start: qa ask {result['ours']['median_s']:.2f} s, peer {result['peer']['median_s']:.2f} s")
    return result


def measure_million(source_index: Path, work: Path, log, n: int = 1_000_000) -> dict:
    """The store alone at 1M chunks: synthetic vectors derived from a real qa index."""
    import numpy as np

    import qa
    import synthetic
    from qa.store.folder import IndexDirectory
    from qa.store.vectors.factory import create_vector_index

    snapshot = qa.load(source_index).snapshot()
    # the real index's vectors seed the synthetic ones (the study used 9,976); row i of the
    # synthetic index carries row i mod R's text, pieces and lexical rows
    real = snapshot.generation.vectors.vectors(np.arange(snapshot.generation.vectors.size, dtype=np.int64))
    start = time.perf_counter()
    vectors = synthetic.derived_vectors(real, n)
    out = work / "index-1M"
    shutil.rmtree(out, ignore_errors=True)
    source = IndexDirectory(source_index).generation_path(snapshot.name)
    store = synthetic.write_index(out, vectors, source)
    built = time.perf_counter() - start
    log(f"  1M: {store.describe()['factory']} written in {built:.0f} s")
    questions = corpus.english_questions()[:320]
    query_vectors = snapshot.embedder.encode_queries(questions)
    exact = create_vector_index(vectors, vectors.shape[1], requested="flat").search(query_vectors, 10)[1]
    del vectors
    args = {"out": str(out), "questions": questions, "exact_rows": exact.tolist()}
    generation = out / IndexDirectory(out).current_generation()
    for path in (p for p in generation.rglob("*") if p.is_file()):  # evict this index from the page cache: a cold open
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    cold, _ = worker("store-query", args, work)
    warm, _ = worker("store-query", args, work)
    result = {"chunks": n, "questions": len(questions), "vector_index": store.describe(), "build_and_write_s": built, "size_mb": du(out) / 1e6,
              "cold_open_s": cold["open_s"], **warm}
    log(f"  1M: open {cold['open_s']:.2f} s cold / {warm['open_s']:.2f} s warm, retrieve p50 "
        f"{warm['retrieve']['p50_ms']:.1f} ms, recall@10 {warm['recall@10']:.3f}, RSS {warm['peak_rss_mb']:.0f} MB")
    return result


def measure_build_memory(sizes: list[int], work: Path, log) -> list[dict]:
    """First builds of real-text corpora of ``sizes`` chunks in a fresh process each, without
    the encoder (``worker.HashedEmbedder``: a million chunks would take hours to embed): peak
    RSS, chunks per second and bytes per chunk on disk; then the vector stage alone (spool,
    index, float16 copy) at the largest size, the part of a build that grows with it."""
    results = []
    for chunks in sizes:
        label = f"{chunks // 1000}k"
        docs = work / f"docs-{label}"
        if not docs.exists():
            corpus.write_sized_corpus(docs, chunks)
        out = work / f"index-rows-{label}"
        shutil.rmtree(out, ignore_errors=True)
        outcome, seconds = worker("build-rows", {"docs": str(docs), "out": str(out)}, work)
        size = du(out)
        results.append({"label": label, "chunks": outcome["chunks"], "build_s": seconds,
                        "chunks_per_s": outcome["chunks"] / seconds, "peak_rss_mb": outcome["peak_rss_mb"],
                        "bytes_per_chunk": size / outcome["chunks"], "size_mb": size / 1e6})
        log(f"  {label} build without the encoder: {outcome['chunks']} chunks in {seconds:.0f} s, peak RSS "
            f"{outcome['peak_rss_mb']:.0f} MB, {size / outcome['chunks']:.0f} bytes/chunk")
        shutil.rmtree(out, ignore_errors=True)
    if sizes:  # the part that grows with the corpus, alone at the largest size
        out = work / "store-build"
        shutil.rmtree(out, ignore_errors=True)
        outcome, seconds = worker("store-build", {"n": max(sizes), "out": str(out)}, work)
        results.append({"label": f"{max(sizes) // 1000}k, vector stage alone ({outcome['factory']})",
                        "chunks": outcome["chunks"], "build_s": outcome["store_s"],
                        "chunks_per_s": outcome["chunks"] / outcome["store_s"], "peak_rss_mb": outcome["peak_rss_mb"],
                        "bytes_per_chunk": du(out) / outcome["chunks"], "size_mb": du(out) / 1e6})
        log(f"  {results[-1]['label']}: peak RSS {outcome['peak_rss_mb']:.0f} MB")
        shutil.rmtree(out, ignore_errors=True)
    return results


def render_build_memory(report: dict) -> list[str]:
    """The first-build memory and size rows: real builds (bundled encoder) and builds
    without the encoder at sizes it would take hours to embed."""
    lines = ["", "| first build | chunks | build s | chunks/s | peak build RSS MB | bytes/chunk on disk |",
             "|---|---|---|---|---|---|"]
    for size in report["corpora"]:
        p = size["pipelines"].get("ours")
        if p and size["label"] != "xquad-es":
            lines.append(f"| {size['label']}, bundled encoder | {p['chunks']:,} | {p['build_s']:.0f} | {p['chunks_per_s']:.0f} "
                         f"| {p['build_peak_rss_mb']:.0f} | {p['size_mb'] * 1e6 / p['chunks']:,.0f} |")
    for b in report.get("build_memory") or []:
        kind = "" if "vector stage" in b["label"] else ", no encoder (hashed vectors)"
        lines.append(f"| {b['label']}{kind} | {b['chunks']:,} | {b['build_s']:.0f} "
                     f"| {b['chunks_per_s']:.0f} | {b['peak_rss_mb']:.0f} | {b['bytes_per_chunk']:,.0f} |")
    return lines if len(lines) > 3 else []


def measure_update_cost(label: str, docs: Path, index_dir: Path, runs: int, log) -> dict:
    """One document added, changed and removed in an index of ``docs`` (bench/update_cost.py,
    in its own process: the timings are build_index calls, as the app's upload makes)."""
    done = subprocess.run([sys.executable, str(BENCH / "update_cost.py"), "--corpus", label, "--docs", str(docs),
                           "--index", str(index_dir), "--runs", str(runs), "--json"],
                          env=ENV, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"update_cost.py failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)["summary"]
    log(f"  {label} update by name: add {summary['add by name']['seconds']:.2f} s, change "
        f"{summary['change by name']['seconds']:.2f} s, remove {summary['remove by name']['seconds']:.2f} s; from the "
        f"folder: add {summary['add']['seconds']:.2f} s")
    return summary


def measure_reader_loop(log, updates: int = 24, loads: int = 5000) -> dict:
    """Loads and retrieves in a loop while another process rebuilds and updates the index
    (bench/reader_loop.py); every failure counts."""
    done = subprocess.run([sys.executable, str(BENCH / "reader_loop.py"), "--updates", str(updates), "--loads",
                           str(loads), "--json"], env=ENV, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"reader_loop.py failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"  readers: {result['loads']} loads+retrieves during {result['updates']} updates, {result['failures']} failures")
    return result


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def render(report: dict) -> str:
    """The README tables."""
    lines = [f"`{report['command']}` on {report['machine']}. Load average (1, 5, 15 min) before / after: "
             f"{report['load_before']} / {report['load_after']}. Wall time of the run: {report['wall_s'] / 60:.1f} min.",
             "", "| corpus | pipeline | chunks | build s (runs) | chunks/s | build ratio | retrieve p50 / p95 ms "
             "| retrieve ratio | ask p50 / p95 ms | open s | query peak RSS MB | RSS ratio | index MB | hit@1 | hit@5 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in report["corpora"]:
        pipes = size["pipelines"]
        for name, p in pipes.items():
            vs = pipes["peer"] if name != "peer" and "peer" in pipes else None
            ask = p.get("query_ask")
            retrieve = p["query_retrieve"]
            cells = [
                size["label"], NAMES[name], f"{p['chunks']:,}", f"{p['build_s']:.1f} ({p['build_runs']})",
                f"{p['chunks_per_s']:.0f}", ratio(p["build_s"], vs["build_s"]) if vs else "-",
                f"{retrieve['p50_ms']:.1f} / {retrieve['p95_ms']:.1f}",
                ratio(retrieve["p50_ms"], vs["query_retrieve"]["p50_ms"]) if vs else "-",
                f"{ask['p50_ms']:.1f} / {ask['p95_ms']:.1f}" if ask else "-",
                f"{p['query_open_s']:.2f}", f"{p['query_peak_rss_mb']:.0f}",
                ratio(p["query_peak_rss_mb"], vs["query_peak_rss_mb"]) if vs else "-", f"{p['size_mb']:.1f}",
                f"{p['query_hit@1']:.3f}" if "query_hit@1" in p else "", f"{p['query_hit@5']:.3f}" if "query_hit@5" in p else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Ratios: qa / LangChain, each qa row against the LangChain row of the same corpus (below 1: qa "
              "faster or smaller). Build: documents on disk to saved index, the whole process (start-up and model "
              "load included). xquad-es: the 48 Spanish XQuAD-R articles, queried with the 1,190 English questions "
              "(hit@k: a top-k passage covers the gold answer); other corpora: English questions, 200 timed after 20 "
              "warm-up. Ask: extractive answer, bundled encoder only."]
    lines += render_build_memory(report)
    c = report["cold_start"]
    if c:
        lines += ["", f"Cold start (fresh process, seed index, to the printed answer; median of {len(c['ours']['runs'])}): "
                  f"`qa ask` {c['ours']['median_s']:.2f} s, LangChain + MiniLM {c['peer']['median_s']:.2f} s "
                  f"(ratio {ratio(c['ours']['median_s'], c['peer']['median_s'])})."]
    updates = report.get("updates")
    if updates:
        lines += ["", "| one document's update (in-process build, median) | chunks | files | add / change / remove "
                  "by name s | its embedding s (add) | beyond embedding s (add by name) | words searched (add) | "
                  "from the folder: add / change / remove s | unchanged folder s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for u in updates:
            lines.append(f"| {u['corpus']} | {u['chunks']:,} | {u['documents']:,} | {u['add by name']['seconds']:.2f} / "
                         f"{u['change by name']['seconds']:.2f} / {u['remove by name']['seconds']:.2f} | "
                         f"{u['add by name']['embedding_s']:.2f} | {u['add by name']['beyond_embedding_s']:.2f} | "
                         f"{u['add by name']['words_searched']:.0f} | {u['add']['seconds']:.2f} / "
                         f"{u['change']['seconds']:.2f} / {u['remove']['seconds']:.2f} | "
                         f"{u['unchanged folder']['seconds']:.2f} |")
    readers = report.get("readers")
    if readers:
        lines += ["", f"Readers during updates: {readers['loads']:,} `qa.load` + `retrieve` in a loop while another "
                  f"process ran {readers['updates']} rebuilds and one-document updates: {readers['failures']} failures."]
    m = report.get("million")
    if m:
        v = m["vector_index"]
        lines += ["", f"| {m['chunks']:,} chunks (synthetic vectors from real ones, rows of the 10k index repeated) | value |", "|---|---|",
                  f"| index | {v['factory']}, nprobe {v['nprobe']}, exact re-score of {v['rerank']} |",
                  f"| recall@10 vs exact ({m['questions']} real questions) | {m['recall@10']:.3f} |",
                  f"| open (index + chunk table + checks), cold / warm page cache | {m['cold_open_s']:.2f} / {m['open_s']:.2f} s |",
                  f"| retrieve p50 / p95, hybrid (encode + search + re-rank + rows) | {m['retrieve']['p50_ms']:.1f} / {m['retrieve']['p95_ms']:.1f} ms |",
                  f"| retrieve p50 / p95, dense (encode + search + rows) | {m['retrieve_dense']['p50_ms']:.1f} / {m['retrieve_dense']['p95_ms']:.1f} ms |",
                  f"| store search p50 / p95 | {m['search']['p50_ms']:.2f} / {m['search']['p95_ms']:.2f} ms |",
                  f"| query process peak RSS (encoder included) | {m['peak_rss_mb']:.0f} MB |",
                  f"| index on disk | {m['size_mb']:.0f} MB |",
                  f"| generate + train + write | {m['build_and_write_s']:.0f} s |"]
    return "\n".join(lines)


def report(started: float, load_before: str, cold: dict, corpora: list[dict], million: dict | None,
           build_memory: list[dict] | None = None, updates: list[dict] | None = None,
           readers: dict | None = None) -> dict:
    return {
        "updates": updates, "readers": readers,
        "machine": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}",
        "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": " ".join(["python", "bench/speed.py", *sys.argv[1:]]),
        "wall_s": time.perf_counter() - started, "cold_start": cold, "corpora": corpora, "million": million,
        "build_memory": build_memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="the XQuAD-R corpus (~200 chunks; qa and LangChain defaults) and cold start, one build each (~1 min idle)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="real-text corpus sizes in chunks (one build each)")
    parser.add_argument("--runs", type=int, default=3, help="builds of the XQuAD-R corpus per pipeline (median)")
    parser.add_argument("--peer-up-to", type=int, default=100_000,
                        help="compare with the peer (and qa --model MiniLM) up to this size; beyond, qa alone")
    parser.add_argument("--no-million", dest="million", action="store_false", help="skip the 1M-chunk store")
    parser.add_argument("--million-size", type=int, default=1_000_000, help="chunks in the synthetic store")
    parser.add_argument("--build-memory-sizes", default="10000,100000,1000000",
                        help="first builds without the encoder, for peak RSS and bytes per chunk (empty: none)")
    parser.add_argument("--build-memory-only", action="store_true", help="only the builds of --build-memory-sizes")
    parser.add_argument("--no-updates", dest="updates", action="store_false",
                        help="skip the one-document update costs and the readers-during-updates loop")
    parser.add_argument("--update-runs", type=int, default=3, help="add/change/remove rounds per corpus (median)")
    parser.add_argument("--million-update", action="store_true",
                        help="also time one document's update of the synthetic 1M index (copies its ~12 GB once per step)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--store", choices=("local", "milvus"), default="local",
                        help="milvus: the engine backend beside the local one (needs the engine-test and ray extras)")
    parser.add_argument("--store-sizes", default="10000,100000",
                        help="with --store milvus: index sizes; the first is real text, the others synthetic rows")
    parser.add_argument("--ingest-chunks", type=int, default=2000, help="with --store milvus: chunks of the Ray ingestion")
    parser.add_argument("--store-questions", type=int, default=100,
                        help="with --store milvus: timed questions per size (after 20 warm-up ones)")
    options = parser.parse_args()
    if options.store == "milvus":
        store_main(options)
        return
    log = (lambda message: print(message, file=sys.stderr, flush=True))
    work = options.work or Path(tempfile.mkdtemp(prefix="qa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    quick = options.quick
    sizes = [] if quick else [int(n) for n in options.sizes.split(",") if n]
    memory_sizes = [] if quick else [int(n) for n in options.build_memory_sizes.split(",") if n]
    if options.build_memory_only:
        try:
            log("first builds without the encoder")
            build_memory = measure_build_memory(memory_sizes, work, log)
        finally:
            if options.work is None:
                shutil.rmtree(work, ignore_errors=True)
        final = report(started, load_before, {}, [], None, build_memory)
        print(json.dumps(final, indent=1) if options.json else render(final))
        return
    build_memory = None
    try:
        log("XQuAD-R en->es (quality, and the smallest corpus)")
        gold = corpus.write_quality_corpus(work / "docs-xquad-es")
        corpora = [measure_corpus("xquad-es", work / "docs-xquad-es", [q.text for q in gold], [q.__dict__ for q in gold],
                                  # quick: the defaults only (qa --model MiniLM alone takes ~50 s)
                                  ["ours", "peer"] if quick else ["ours", "ours-minilm", "peer"],
                                  1 if quick else options.runs, work, log)]
        log("cold start")
        cold = measure_cold_start(work, 3 if quick else COLD_RUNS, log)
        updates: list[dict] = []
        readers = None
        if options.updates:
            updates.append(measure_update_cost("xquad-es", work / "docs-xquad-es", work / "index-ours-xquad-es",
                                               options.update_runs, log))
            readers = measure_reader_loop(log, *((8, 500) if quick else (24, 5000)))
        questions = corpus.english_questions()[:LATENCY_QUESTIONS]
        million = None
        for chunks in sizes:
            label = f"{chunks // 1000}k"
            corpus.write_sized_corpus(work / f"docs-{label}", chunks)
            pipelines = ["ours", "ours-minilm", "peer"] if chunks <= options.peer_up_to else ["ours"]
            log(f"{label} chunks")
            corpora.append(measure_corpus(label, work / f"docs-{label}", questions, None, pipelines, 1, work, log))
            if options.updates:
                updates.append(measure_update_cost(label, work / f"docs-{label}", work / f"index-ours-{label}",
                                                   options.update_runs, log))
            if options.million and million is None and (chunks >= 10_000 or chunks == sizes[-1]):
                # seeded from ~10k real vectors (as in the scale study), before the long 100k build
                log(f"{options.million_size:,} chunks, store only")
                million = measure_million(work / f"index-ours-{label}", work, log, options.million_size)
                if options.million_update:
                    import synthetic

                    synthetic.write_documents(work / "docs-1M", options.million_size)
                    updates.append(measure_update_cost("1M", work / "docs-1M", work / "index-1M", 1, log))
            # a long run leaves the table of what it has measured so far
            (work / "partial.md").write_text(render(report(started, load_before, cold, corpora, million, None, updates,
                                                           readers)))
        if memory_sizes:
            log("first builds without the encoder")
            build_memory = measure_build_memory(memory_sizes, work, log)
    finally:
        if options.work is None:
            shutil.rmtree(work, ignore_errors=True)
    final = report(started, load_before, cold, corpora, million, build_memory, updates, readers)
    print(json.dumps(final, indent=1) if options.json else render(final))


def store_main(options) -> None:
    """``--store milvus``: bench/engine_speed.py's :func:`store_run`, printed."""
    import engine_speed

    log = (lambda message: print(message, file=sys.stderr, flush=True))
    work = options.work or Path(tempfile.mkdtemp(prefix="qa-bench-milvus-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = engine_speed.store_run(work, [int(n) for n in options.store_sizes.split(",") if n],
                                        options.ingest_chunks, options.store_questions, log)
    finally:
        if options.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if options.json:
        print(json.dumps(result, indent=1))
        return
    print(f"CPU: {result['cpu']} ({result['cores']} cores); load average {result['load_average']}")
    ingest = result["ray_ingest"]
    print(f"Ray ingestion straight to Milvus, {ingest[0]['chunks']} chunks: "
          + ", ".join(f"{r['workers']} encoder(s) {r['chunks_per_s']} chunks/s" for r in ingest)
          + f"; 2/1 = {result['ray_2_over_1']}x")
    print("| chunks | rows | publish chunks/s | retrieve p50/p95 local | engine | ask p50/p95 local | engine | top-5 same |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["sizes"]:
        pair = lambda key: f"{r[key]['p50_ms']} / {r[key]['p95_ms']} ms"
        print(f"| {r['chunks']:,} | {r['rows']} | {r['publish_chunks_per_s']} | {pair('local_retrieve')} | "
              f"{pair('engine_retrieve')} | {pair('local_ask')} | {pair('engine_ask')} | {r['identical_top5_share']} |")
    update = result["update"]
    print(f"One document added: {update['chunks_embedded']} chunks embedded, publish {update['publish_s']} s, "
          f"inserted {update['inserted']}, segments uploaded {update['segments_uploaded']}, "
          f"reused {update['segments_reused']}")


if __name__ == "__main__":
    main()
