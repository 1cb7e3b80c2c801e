"""Indexing speed of text formats against another qa checkout, and the OCR rate.

    python bench/formats.py --baseline /path/to/other/qa/checkout   # text builds, both versions, alternated
    python bench/formats.py --baseline ... --formats txt,md,html,pdf,docx   # the corpus spread over five formats
    python bench/formats.py --ocr-pages 8                           # OCR pages/s of an image-only PDF

Text: a real-text corpus of ``--chunks`` chunks (bench/corpus.py), its files written in turn
in each of ``--formats`` (the tests' PDF and DOCX writers), is indexed from scratch in fresh
processes, this checkout and the baseline alternately, ``--runs`` times each; the
medians, chunks/s and their ratio are printed (the machine is shared, so alternation keeps the two
under the same load). OCR: XQuAD-R Spanish sentences are drawn into an image-only PDF (the
tests' page renderer) and read with an empty OCR cache, once with ``--ocr-languages spa`` and
once with each document's language detected.
"""

from __future__ import annotations

import argparse
import html
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

BUILD = "import sys, qa; print(qa.build_index(sys.argv[1], sys.argv[2], progress=False).chunks)"
TEXT_FORMATS = ("txt", "md", "html", "pdf", "docx")


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            flags = Path("/proc/cpuinfo").read_text()
            return f"{line.split(':', 1)[1].strip()} (avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'})"
    return platform.processor() or "unknown"


def text_builds(baseline: Path, chunks: int, runs: int, work: Path, formats: list[str]) -> dict:
    from corpus import write_sized_corpus

    docs = work / "docs"
    docs.mkdir()
    write_sized_corpus(docs, chunks)
    for number, path in enumerate(sorted(docs.iterdir())):
        _rewrite(path, formats[number % len(formats)])
    times: dict[str, list[float]] = {"this": [], "baseline": []}
    indexed: dict[str, int] = {}
    for run in range(runs):
        for name, checkout in (("this", REPO), ("baseline", baseline)):
            index = work / f"index-{name}-{run}"
            # the whole process, as a user waits for it (start-up and model load included)
            started = time.perf_counter()
            build = subprocess.run([sys.executable, "-c", BUILD, str(docs), str(index)], cwd=checkout, check=True,
                                   capture_output=True, text=True, env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin",
                                                                        "HOME": str(Path.home())})
            times[name].append(time.perf_counter() - started)
            indexed[name] = int(build.stdout.split()[-1])
    this, base = statistics.median(times["this"]), statistics.median(times["baseline"])
    return {"files": len(list(docs.iterdir())), "formats": formats, "bytes": sum(p.stat().st_size for p in docs.iterdir()),
            "chunks": indexed, "runs": times, "median_s": {"this": this, "baseline": base},
            "chunks_per_s": {"this": indexed["this"] / this, "baseline": indexed["baseline"] / base},
            "time_ratio": this / base}


def _rewrite(path: Path, suffix: str) -> None:
    """The text file at ``path`` as a file of type ``suffix``, one paragraph a block (a PDF page each)."""
    from format_files import make_pdf
    from test_documents import make_docx

    paragraphs = path.read_text(encoding="utf-8").split("\n\n")
    if suffix == "txt":
        return
    path.unlink()
    target = path.with_suffix(f".{suffix}")
    if suffix == "md":
        target.write_text("# " + "\n\n".join(paragraphs), encoding="utf-8")
    elif suffix == "html":
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        target.write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
    elif suffix == "pdf":  # its core font writes Latin-1 only
        target.write_bytes(make_pdf([p.encode("latin-1", "replace").decode("latin-1") for p in paragraphs]))
    elif suffix == "docx":
        target.write_bytes(make_docx(paragraphs))
    else:
        raise SystemExit(f"--formats: {suffix!r} is not one of {', '.join(TEXT_FORMATS)}")


def ocr_rate(pages: int) -> dict:
    import qa.ingest.ocr
    from format_files import image_only_pdf
    from qa.ingest.documents import parse
    from qa.eval.benchmark import DEFAULT_DATA_DIR, read_articles

    sentences = [s for article in read_articles(DEFAULT_DATA_DIR, "es") for p in article["paragraphs"]
                 for s in p["context"].split(". ")]
    lines = [s[:70] for s in sentences if len(s) > 40]
    pdf = image_only_pdf(["\n".join(lines[i * 25:(i + 1) * 25]) for i in range(pages)])
    result = {"pages": pages, "workers": qa.ingest.ocr.usable_cores(), "tesseract": qa.ingest.ocr.tesseract_version()}
    for label, languages in (("spa", "spa"), ("detected", None)):
        with tempfile.TemporaryDirectory() as cache:
            qa.ingest.ocr.cache_dir = lambda folder=Path(cache): folder  # an empty cache: every page is read
            started = time.perf_counter()
            document = parse(pdf, "scan.pdf", qa.ingest.ocr.OcrSettings(languages=languages))
            seconds = time.perf_counter() - started
        result[label] = {"seconds": seconds, "pages_per_s": pages / seconds, "characters": len(document.text)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another qa checkout to compare text builds with")
    parser.add_argument("--chunks", type=int, default=1000, help="size of the text corpus (default 1000 chunks)")
    parser.add_argument("--runs", type=int, default=3, help="builds per version (median)")
    parser.add_argument("--formats", default="txt", help=f"comma-separated, of {','.join(TEXT_FORMATS)} (default txt)")
    parser.add_argument("--ocr-pages", type=int, default=0, help="pages of the OCR run (0: no OCR run)")
    args = parser.parse_args()
    report: dict = {"cpu": cpu()}
    if args.baseline:
        with tempfile.TemporaryDirectory() as work:
            report["text"] = text_builds(args.baseline.resolve(), args.chunks, args.runs, Path(work),
                                         args.formats.split(","))
    if args.ocr_pages:
        report["ocr"] = ocr_rate(args.ocr_pages)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
