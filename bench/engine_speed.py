"""The Milvus backend (issue 16) beside the local backend, in one run: publish (insert) rate,
retrieve and ask p50/p95, top-5 agreement, bytes per chunk.

    pip install -e ".[engine-test]"
    python bench/engine_speed.py --chunks 10000            # starts a Milvus 2.3 standalone server
    python bench/engine_speed.py --uri milvus://HOST:19530/bench   # an existing server or cluster
    python bench/speed.py --store milvus                   # Ray ingestion, 10k real and 100k synthetic
                                                           # chunks, and one update (:func:`store_run`)

A real-text corpus of about ``--chunks`` chunks (bench/corpus.py) is built once locally
(qa's builder, timed); that generation is published to the engine (timed: the insert rate
of chunks with their pieces, words and translations); then the same questions (XQuAD-R
English) are asked of both, alternately, ``Index.retrieve`` (hybrid, k=5) and
``Index.ask``, each timed; medians and 95th percentiles. Without ``--uri`` the bench starts
the ``milvus`` package's standalone server on loopback ports in a scratch folder and stops
it afterwards (its internal ports listen on all interfaces: run it on a trusted machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))  # qa from this checkout

import corpus  # noqa: E402
import qa  # noqa: E402
from qa.store.local import LocalGenerations  # noqa: E402
from qa.store.milvus.location import MilvusLocation  # noqa: E402
from formats import cpu  # noqa: E402
from qa.store.milvus.publish import publish  # noqa: E402
from qa.store.milvus.schema import parts_on  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneServer:
    """The milvus package's standalone server on loopback ports, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        server = shutil.which("milvus-server", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                      os.environ.get("PATH", "")]))
        if server is None:
            sys.exit('milvus-server not found: pip install -e ".[engine-test]"')
        self.port = _free_port()
        flags = ["--proxy-port", str(self.port)]
        for flag in ("--root-coord-port", "--proxy-internal-port", "--query-coord-port", "--query-node-port",
                     "--index-coord-port", "--index-node-port", "--data-coord-port", "--data-node-port"):
            flags += [flag, str(_free_port())]
        self.data = folder / "milvus-data"
        shutil.rmtree(self.data, ignore_errors=True)  # a fresh server: one restarted on new ports fails
        self.log = open(folder / "milvus.log", "wb")
        started = time.perf_counter()
        self.process = subprocess.Popen([server, "--data", str(self.data), *flags], stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        from pymilvus import MilvusClient

        while True:
            if self.process.poll() is not None or time.perf_counter() - started > 180:
                self.stop()
                sys.exit(f"the Milvus server did not start; see {folder / 'milvus.log'} and {self.data / 'logs'}")
            try:
                MilvusClient(f"http://127.0.0.1:{self.port}", timeout=2).list_collections()
                break
            except Exception:
                time.sleep(0.5)
        self.start_seconds = time.perf_counter() - started

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while True:
            self.process.poll()
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.5)
        self.log.close()


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=200, help="timed questions (after 20 warm-up ones)")
    parser.add_argument("--uri", help="an existing engine (default: start a standalone server)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="qa-engine-bench-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        docs, local_dir = work / "docs", work / "local"
        if not docs.exists():
            corpus.write_sized_corpus(docs, args.chunks)
        started = time.perf_counter()
        report = qa.build_index(docs, local_dir, progress=False)
        local_build = time.perf_counter() - started
        server = None if args.uri else StandaloneServer(work)
        uri = args.uri or f"milvus://127.0.0.1:{server.port}/bench"
        try:
            result = measure(uri, local_dir, report.chunks, args.questions, server.data if server else None)
            result.update(local_build_s=round(local_build, 1),
                          local_build_chunks_per_s=round(report.chunks / local_build, 1),
                          local_index_bytes=du(local_dir))
            if server is not None:
                result.update(server_start_s=round(server.start_seconds, 1), server_data_bytes=du(server.data))
        finally:
            if server is not None:
                server.stop()
    result.update(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                  load_average=[round(load_before[0], 2), round(os.getloadavg()[0], 2)])
    print(json.dumps(result, indent=2))


def empty(location: MilvusLocation, client) -> None:
    """Drop the bench index ``location`` names, if any: a bench index starts empty."""
    if location.base in client.list_aliases().get("aliases", []):
        client.drop_alias(location.base)
    for numbers in parts_on(client.list_collections(), location.base).values():
        for names in numbers.values():
            for name in names:
                client.drop_collection(name)


def wait_for_indexes(client, base: str, limit: float = 420.0) -> tuple[float, bool]:
    """Seconds until the engine has indexed every row of the current generation's segments
    (a server builds indexes in the background; until then it searches the rows unindexed),
    and whether it finished within ``limit``."""
    from qa.store.milvus.reader import current_generation, read_stats

    segments = read_stats(client, base, current_generation(client, base))["segments"]
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        # against the segments' own row counts: Milvus 2.3 leaves total_rows at 0
        if all(client.describe_index(f"{base}_{s['name']}_chunks", "vector").get("indexed_rows", 0) >= s["rows"]
               for s in segments if s["index"] == "HNSW"):
            return time.perf_counter() - started, True
        time.sleep(2)
    return time.perf_counter() - started, False


def measure(uri: str, local_dir: Path, chunks: int, questions: int, data_dir: Path | None) -> dict:
    location = MilvusLocation.parse(uri)
    client = location.client()
    empty(location, client)
    generation = LocalGenerations(local_dir).open()
    parts: dict[str, float] = {}
    data_before = du(data_dir) if data_dir else 0
    started = time.perf_counter()
    try:
        publish(generation, location, client, source_sha256="bench", timings=parts)
    finally:
        generation.lease.release()
    publish_seconds = time.perf_counter() - started
    index_wait, indexed = wait_for_indexes(client, location.base)
    data_growth = du(data_dir) - data_before if data_dir else None
    local, engine = qa.load(local_dir), qa.load(uri)
    stats = engine.stats()
    texts = corpus.english_questions()[:questions + 20]
    timings = {name: {"retrieve": [], "ask": []} for name in ("local", "engine")}
    same = 0
    stages: dict[str, list[float]] = {}
    for i, question in enumerate(texts):
        tops = {}
        for name, index in (("local", local), ("engine", engine)):
            started = time.perf_counter()
            tops[name] = [h.chunk_id for h in index.retrieve(question, k=5)]
            retrieved = time.perf_counter()
            index.ask(question)
            asked = time.perf_counter()
            if i >= 20:
                timings[name]["retrieve"].append(retrieved - started)
                timings[name]["ask"].append(asked - retrieved)
        if i >= 20:
            same += tops["local"] == tops["engine"]
            for stage, seconds in engine.trace(question, k=5).timings.items():
                stages.setdefault(stage, []).append(seconds)
    return {
        "chunks": chunks, "engine": uri.split("://")[0], "vector_index": stats.vector_index,
        "publish_s": round(publish_seconds, 1), "publish_chunks_per_s": round(chunks / publish_seconds, 1),
        "publish_parts_s": {part: round(seconds, 1) for part, seconds in parts.items()},
        "index_build_wait_s": round(index_wait, 1), "index_built": indexed,
        "chunk_insert_per_s": round(chunks / (parts["chunks"] + parts["pieces"]), 1),
        "server_data_growth_bytes_per_chunk": None if data_growth is None else round(data_growth / chunks),
        "engine_entity_bytes_per_chunk": round(stats.size_bytes / chunks),
        "questions": len(texts) - 20, "identical_top5_share": round(same / (len(texts) - 20), 4),
        **{f"{name}_{what}": percentiles(values) for name, kinds in timings.items() for what, values in kinds.items()},
        "engine_retrieve_stages_median_ms": {stage: round(1000 * statistics.median(v), 2) for stage, v in stages.items()},
    }


def measure_ray_ingest(uri: str, docs: Path, workers: int) -> dict:
    """A first build of ``docs`` straight to the engine at ``uri`` (emptied first), encoded
    on the running Ray cluster by ``workers`` encoders: chunks per second, end to end (reading,
    encoding, the rows inserted as they come, the publish)."""
    location = MilvusLocation.parse(uri)
    empty(location, location.client())
    shutil.rmtree(os.environ["QA_ENGINE_STAGING"], ignore_errors=True)
    started = time.perf_counter()
    report = qa.build_index(docs, uri, progress=False, ray="auto", ray_workers=workers)
    seconds = time.perf_counter() - started
    return {"workers": workers, "chunks": report.chunks, "seconds": round(seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1)}


def measure_update(uri: str, local_dir: Path, docs: Path) -> dict:
    """One document added to the index at ``local_dir`` (published to ``uri``), built here
    and published: what the publish inserted and how long it took, beside a whole publish."""
    from qa.store.milvus.publish import publish as publish_generation
    from qa.store.neighbour_table import NEIGHBOURS_FILE
    from qa.store.folder import IndexDirectory

    location = MilvusLocation.parse(uri)
    client = location.client()
    directory = IndexDirectory(local_dir)
    kept = local_dir.parent / "published-neighbours.sqlite"
    shutil.copyfile(directory.generation_path(directory.current_generation()) / NEIGHBOURS_FILE, kept)
    (docs / "zz-update.txt").write_text("The Glória funicular climbs from Restauradores to Bairro Alto since 1885. "
                                        "Its yellow cars were electrified in 1915.", encoding="utf-8")
    started = time.perf_counter()
    report = qa.build_index(docs, local_dir, progress=False)
    built = time.perf_counter() - started
    generation = LocalGenerations(local_dir).open()
    parts: dict[str, float] = {}
    started = time.perf_counter()
    try:
        done = publish_generation(generation, location, client, source_sha256="bench-update", published_neighbours=kept,
                                  timings=parts)
    finally:
        generation.lease.release()
    return {"chunks_embedded": report.chunks_embedded, "local_build_s": round(built, 2),
            "publish_s": round(time.perf_counter() - started, 2), "segments_uploaded": len(done.uploaded),
            "segments_reused": len(done.reused), "inserted": done.inserted,
            "publish_parts_s": {part: round(seconds, 2) for part, seconds in parts.items()}}


def store_run(work: Path, sizes: list[int], ingest_chunks: int, questions: int, log) -> dict:
    """``bench/speed.py --store milvus``: on one standalone server started here, (1) Ray
    ingestion straight to the engine with 1 and 2 encoders, (2) for each size, the local index
    and its copy on the engine, retrieve and ask p50/p95 side by side (sizes above the first
    are synthetic rows made from the first's real ones, bench/synthetic.py: embedding them here
    would take hours), (3) one document's update published to the first size's index."""
    import ray

    import synthetic
    from qa.store.folder import IndexDirectory

    os.environ["QA_ENGINE_STAGING"] = str(work / "staging")
    load_before = os.getloadavg()
    server = StandaloneServer(work)
    result: dict = {"cpu": cpu(), "cores": os.cpu_count(), "server_start_s": round(server.start_seconds, 1)}
    try:
        log(f"Ray ingestion of {ingest_chunks} chunks straight to the engine")
        docs = work / "docs-ingest"
        corpus.write_sized_corpus(docs, ingest_chunks)
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        result["ray_start_s"] = round(time.perf_counter() - started, 1)
        try:
            runs = [measure_ray_ingest(f"milvus://127.0.0.1:{server.port}/ingest", docs, w) for w in (1, 2)]
        finally:
            ray.shutdown()
        result["ray_ingest"] = runs
        result["ray_2_over_1"] = round(runs[1]["chunks_per_s"] / runs[0]["chunks_per_s"], 2)
        log(f"  {runs}")
        result["sizes"] = []
        real_dir = None
        for n in sizes:
            local_dir = work / f"local-{n}"
            if real_dir is None:
                docs = work / f"docs-{n}"
                corpus.write_sized_corpus(docs, n)
                log(f"{n} chunks: building the local index (real text)")
                started = time.perf_counter()
                report = qa.build_index(docs, local_dir, progress=False)
                build_s, chunks, kind = time.perf_counter() - started, report.chunks, "real"
                real_dir, real_docs = local_dir, docs
            else:
                log(f"{n} chunks: writing the synthetic local index")
                started = time.perf_counter()
                generation = qa.load(real_dir).snapshot().generation
                real = generation.vectors.vectors(np.arange(generation.vectors.size, dtype=np.int64))
                synthetic.write_index(local_dir, synthetic.derived_vectors(real, n),
                                      IndexDirectory(real_dir).generation_path(generation.name))
                build_s, chunks, kind = time.perf_counter() - started, n, "synthetic"
            log(f"{chunks} chunks: publishing to the engine and asking both")
            measured = measure(f"milvus://127.0.0.1:{server.port}/bench{n}", local_dir, chunks, questions, None)
            measured.update(rows=kind, local_build_or_write_s=round(build_s, 1))
            result["sizes"].append(measured)
            log(f"  {json.dumps(measured)}")
        log("one document added to the first index, published")
        result["update"] = measure_update(f"milvus://127.0.0.1:{server.port}/bench{sizes[0]}", real_dir, real_docs)
        result["server_data_bytes"] = du(server.data)
    finally:
        server.stop()
    result["load_average"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result


if __name__ == "__main__":
    main()
