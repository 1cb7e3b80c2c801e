"""A document uploaded in the app, until it is answerable: the app's own upload handler on a
large index, then the first answer that cites the new document.

    python bench/upload.py --chunks 100000 --synthetic-from INDEX --work /tmp/up100k
    python bench/upload.py --chunks xquad-es                       # the 48 XQuAD-R articles

The index is made as bench/update_cost.py makes it (``--synthetic-from`` a real index: rows
repeated, vectors derived, no encoding; its documents are stand-in files). The app's
``Library`` opens it and makes its upload warm-up, as ``python app.py`` does; then each run
uploads a new one-paragraph article (a pier number of its own, another place and wood;
the earlier uploads stay, as a user's would) through ``qa.app.handlers.index_uploads`` (saved into
the documents folder, indexed, the index reloaded) and asks a question only that article
answers. Reported per run: the upload handler's seconds, the build's own clock per phase
(the steps the app's progress bar shows, in order), the document's embedding (the "Embedding"
and "Encoding new words" steps), and the seconds from the upload until the answer citing
the article is complete. The issue's target: answerable within the embedding plus 3 s.
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
from update_cost import _EMBEDDING_STEPS, DOCUMENT, synthetic_index  # noqa: E402

QUESTION = "¿De qué madera es el muelle flotante número {number} de los pescadores de {place}?"
# each run's article: another place and wood, and a pier number no earlier upload had (an
# article already indexed would be recognised by its content and not embedded again)
VARIANTS = (("Chiloé", "alerce"), ("Quellón", "ciprés de las Guaitecas"), ("Ancud", "coigüe"),
            ("Quemchi", "mañío"), ("Achao", "roble pellín"))


SYLLABLES = ("ca", "lle", "pu", "hue", "qui", "llan", "co", "ñi", "tra", "mau")


def article(run: int, number: int) -> str:
    """The run's article, with a carpenter's surname made from ``number``: a word the index
    lacks, as a new document's names are (its translations are searched and stored)."""
    place, wood = VARIANTS[run % len(VARIANTS)]
    surname = "".join(SYLLABLES[int(digit)] for digit in str(number)).capitalize()
    return (DOCUMENT.replace("Chiloé", place).replace("alerce", wood)
            .replace("un muelle flotante", f"el muelle flotante número {number}")
            .replace("diseñado por carpinteros", f"diseñado por el maestro {surname} y carpinteros"))


def measure(docs: Path, index_dir: Path, runs: int, log) -> list[dict]:
    from qa.app import handlers
    from qa.app.handlers import Library, index_uploads

    library = Library.open(docs, index_dir)
    library.prepare_for_uploads().join()  # as the app does while its page loads
    real_build = handlers.build_index
    phases: dict[str, float] = {}

    def timed_build(*args, **kwargs):  # the app's own build call, with the library's clock read
        phases.clear()
        return real_build(*args, **kwargs, timings=phases)

    handlers.build_index = timed_build
    results = []
    try:
        with tempfile.TemporaryDirectory() as uploads:
            for run in range(runs):
                number = time.time_ns() // 1000 % 1_000_000
                name = f"zz-upload-{number}.txt"
                upload = Path(uploads) / name
                upload.write_text(article(run, number), encoding="utf-8")
                started = time.perf_counter()
                _, _, message, _ = index_uploads(library, [str(upload)])
                indexed = time.perf_counter() - started
                answer = library.index.ask(QUESTION.format(number=number, place=VARIANTS[run % len(VARIANTS)][0]))
                answered = time.perf_counter() - started
                cited = bool(answer.citations) and answer.citations[0].source == name
                embedding = sum(phases.get(step, 0.0) for step in _EMBEDDING_STEPS)
                results.append({"upload_s": indexed, "answerable_s": answered, "embedding_s": embedding,
                                "beyond_embedding_s": answered - embedding, "cited": cited,
                                "phases": dict(phases), "log": message})
                log(f"  run {run + 1}: indexed in {indexed:.2f} s, answered (cited: {cited}) at {answered:.2f} s; "
                    f"embedding {embedding:.2f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    finally:
        handlers.build_index = real_build
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="xquad-es", help="xquad-es, or a synthetic index's size in chunks")
    parser.add_argument("--synthetic-from", type=Path, help="a real index to make the synthetic one from")
    parser.add_argument("--work", type=Path, help="scratch folder, kept (default: a temporary one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    log = (lambda message: print(message, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        docs, index_dir = work / f"docs-{args.chunks}", work / f"index-{args.chunks}"
        if args.chunks == "xquad-es":
            if not docs.exists():
                corpus.write_quality_corpus(docs)
        elif not (index_dir / "CURRENT").exists():
            if args.synthetic_from is None:
                parser.error("a synthetic size needs --synthetic-from INDEX")
            synthetic_index(args.synthetic_from, int(args.chunks), docs, index_dir, log)
        runs = measure(docs, index_dir, args.runs, log)
    summary = {key: statistics.median(r[key] for r in runs)
               for key in ("upload_s", "answerable_s", "embedding_s", "beyond_embedding_s")}
    summary.update(chunks=args.chunks, runs=len(runs), cited=sum(r["cited"] for r in runs))
    if args.json:
        print(json.dumps({"summary": summary, "runs": runs}, indent=1, ensure_ascii=False))
    else:
        print(f"{args.chunks}: answerable {summary['answerable_s']:.2f} s after the upload (embedding "
              f"{summary['embedding_s']:.2f} s, beyond it {summary['beyond_embedding_s']:.2f} s), cited in "
              f"{summary['cited']} of {len(runs)} runs; median of {len(runs)}")


if __name__ == "__main__":
    main()
