"""What one document's update costs an index: add, change and remove one file, each timed
in this process (as the app's upload does), with where the time went. Each is made twice:
by naming the file (``build_index(only=[file])``, as the app's upload and ``qa index
--only`` do: the rest of the folder is not listed) and by updating from the whole folder
(``qa index DOCS``, which lists and stats every file to find what changed).

    python bench/update_cost.py --corpus xquad-es       # the 48 Spanish XQuAD-R articles
    python bench/update_cost.py --corpus 10000          # the real-text corpus of 10k chunks
    python bench/update_cost.py --corpus 100000 --work /tmp/u100k   # keeps the built index for reruns
    python bench/update_cost.py --corpus 100000 --synthetic-from /tmp/u10k/index-10000 --work /tmp/s100k

``--synthetic-from`` makes the index from a real one without the encoder (bench/synthetic.py,
as bench/speed.py's 1M store: rows of the real index repeated, vectors derived from its
own), so sizes whose real build takes an hour are measured in minutes; its documents are
stand-in files, and the update is the same real one-paragraph document.

The document is a new one-paragraph article (about 700 characters, one chunk, a few words
the corpus lacks). "Embedding" is its own encoding: its chunk with its sentence pieces, and
its new words; the issue's target is the update within that plus 1 s.
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
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO))

import corpus  # noqa: E402

DOCUMENT = ("La cooperativa de pescadores de Chiloé inauguró en 2019 un muelle flotante de madera de alerce, "
            "diseñado por carpinteros de ribera de Dalcahue. El muelle resiste marejadas de cuatro metros y "
            "sirve a cuarenta lanchas artesanales que capturan merluza austral y congrio colorado. "
            "Según la capitanía de puerto de Castro, las descargas crecieron un treinta por ciento desde su "
            "apertura, y el municipio estudia replicar el diseño en Quemchi y Achao.\n")
CHANGED = DOCUMENT.replace("2019", "2021").replace("treinta", "cuarenta")

STEPS = ("unchanged folder", "add", "change", "remove", "add by name", "change by name", "remove by name")
# What counts as the update's own encoding, among the build's timed steps (build_index(timings=...)).
_EMBEDDING_STEPS = ("Embedding", "Encoding new words")


def measure(docs: Path, index_dir: Path, log) -> dict:
    import qa

    if not (index_dir / "CURRENT").exists():
        started = time.perf_counter()
        report = qa.build_index(docs, index_dir, progress=False)
        log(f"  first build: {report.chunks:,} chunks in {time.perf_counter() - started:.0f} s")
    qa.build_index(docs, index_dir, progress=False)  # warm: encoder and word table loaded, caches warm
    extra = docs / "zz-update-cost.txt"
    extra.unlink(missing_ok=True)
    steps = {"unchanged folder": None, "add": DOCUMENT, "change": CHANGED, "remove": "",
             "add by name": DOCUMENT, "change by name": CHANGED, "remove by name": ""}
    stats = qa.load(index_dir).stats()
    result: dict[str, dict] = {"chunks": stats.chunks, "documents": stats.documents}
    for step, text in steps.items():
        if text:
            extra.write_text(text, encoding="utf-8")
        elif text == "":
            extra.unlink()
        spent: dict[str, float] = {}  # seconds per step of the build, from the library's own clock
        only = [extra] if step.endswith("by name") else None
        started = time.perf_counter()
        report = qa.build_index(docs, index_dir, progress=False, timings=spent, only=only)
        seconds = time.perf_counter() - started
        embedding = sum(spent.get(step, 0.0) for step in _EMBEDDING_STEPS)
        result[step] = {"seconds": seconds, "embedding_s": embedding, "beyond_embedding_s": seconds - embedding,
                        "words_searched": report.words_searched, "phases": dict(spent)}
        log(f"  {step:<16} {seconds:6.2f} s (embedding {embedding:.2f} s, beyond it {seconds - embedding:.2f} s, "
            f"{report.words_searched} words searched) " + ", ".join(f"{k} {v:.2f}" for k, v in spent.items() if v >= 0.05))
    return result


def synthetic_index(source: Path, chunks: int, docs: Path, index_dir: Path, log) -> None:
    """A synthetic index of ``chunks`` rows made from the real index ``source``, and the
    documents folder it takes for its own (bench/synthetic.py)."""
    import numpy as np

    import qa
    import synthetic
    from qa.store.folder import IndexDirectory

    started = time.perf_counter()
    generation = qa.load(source).snapshot().generation
    real = generation.vectors.vectors(np.arange(generation.vectors.size, dtype=np.int64))
    synthetic.write_index(index_dir, synthetic.derived_vectors(real, chunks),
                          IndexDirectory(source).generation_path(generation.name))
    synthetic.write_documents(docs, chunks)
    log(f"  synthetic index of {chunks:,} chunks written in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="xquad-es", help="xquad-es, or a real-text corpus size in chunks")
    parser.add_argument("--work", type=Path, help="scratch folder, kept (default: a temporary one, removed)")
    parser.add_argument("--runs", type=int, default=3, help="add/change/remove rounds (median)")
    parser.add_argument("--docs", type=Path, help="an existing documents folder (with --index: its built index)")
    parser.add_argument("--index", type=Path, help="the index of --docs (bench/speed.py passes its own)")
    parser.add_argument("--synthetic-from", type=Path,
                        help="a real index to make a synthetic one of --corpus chunks from (no encoding)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    log = (lambda message: print(message, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        docs = args.docs or work / f"docs-{args.corpus}"
        index_dir = args.index or work / f"index-{args.corpus}"
        if args.synthetic_from is not None and not (index_dir / "CURRENT").exists():
            synthetic_index(args.synthetic_from, int(args.corpus), docs, index_dir, log)
        if not docs.exists():
            if args.corpus == "xquad-es":
                corpus.write_quality_corpus(docs)
            else:
                corpus.write_sized_corpus(docs, int(args.corpus))
        rounds = [measure(docs, index_dir, log) for _ in range(args.runs)]
    summary = {"corpus": args.corpus, "chunks": rounds[0]["chunks"], "documents": rounds[0]["documents"],
               "runs": len(rounds)}
    for step in STEPS:
        summary[step] = {key: statistics.median(r[step][key] for r in rounds)
                         for key in ("seconds", "embedding_s", "beyond_embedding_s", "words_searched")}
    if args.json:
        print(json.dumps({"summary": summary, "rounds": rounds}, indent=1))
    else:
        for step in STEPS:
            s = summary[step]
            print(f"{args.corpus} ({summary['chunks']:,} chunks) {step:<16} {s['seconds']:.2f} s "
                  f"(embedding {s['embedding_s']:.2f} s, beyond {s['beyond_embedding_s']:.2f} s), "
                  f"{s['words_searched']:.0f} words searched; median of {len(rounds)}")


if __name__ == "__main__":
    main()
