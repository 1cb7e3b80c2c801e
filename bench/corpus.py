"""Benchmark data: the XQuAD-R en->es quality set and real-text corpora of a given size.

XQuAD-R is read from ``bench/data`` (with its NOTICE.md), through :mod:`qa.eval.benchmark`, the
same protocol as ``qa eval``. Corpora of N chunks are made from real sentences (XQuAD-R
English and Spanish paragraphs and the seed article), reshuffled per document so that no
two documents are the same file and chunks vary; nothing is cached between runs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from qa.eval.benchmark import DEFAULT_DATA_DIR, Question, load_benchmark, read_articles

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# Characters of text per chunk of 1000-character chunks with 143 overlap: corpus sizes are
# named for those (the default 1500/215 chunker makes ~0.85x as many chunks of them).
CHARS_PER_CHUNK = 870


def _articles(language: str) -> list[dict]:
    return read_articles(DEFAULT_DATA_DIR, language)


def write_quality_corpus(folder: Path) -> list[Question]:
    """The 48 Spanish articles as .txt files (paragraphs separated by blank lines) and the
    1,190 English questions, each with the character span of its gold answer."""
    benchmark = load_benchmark("en", "es")
    benchmark.write_articles(folder)
    return benchmark.questions


def english_questions() -> list[str]:
    """All 1,190 English questions, for latency runs."""
    return [qa["question"] for a in _articles("en") for p in a["paragraphs"] for qa in p["qas"]]


def write_sized_corpus(folder: Path, chunks: int, seed: int = 0) -> int:
    """Documents totalling about ``chunks`` chunks of real text; returns the file count.

    Each document takes one article (English or Spanish XQuAD-R, or the seed article) and
    rebuilds 8 paragraphs from its sentences in a random order, so the text is real and
    on one topic but no two files (or chunks) are copies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pools = [_sentences(p["context"] for p in a["paragraphs"]) for lang in ("en", "es") for a in _articles(lang)]
    seed_text = (REPO / "seeds" / "corea-del-norte-rusia-armas.txt").read_text(encoding="utf-8")
    pools.append(_sentences(seed_text.split("\n\n")))
    target = chunks * CHARS_PER_CHUNK
    written = files = 0
    while written < target:
        pool = rng.choice(pools)
        paragraphs = [" ".join(rng.sample(pool, min(len(pool), rng.randint(4, 7)))) for _ in range(8)]
        text = "\n\n".join(paragraphs)[: target - written + 200]
        (folder / f"doc-{files:06d}.txt").write_text(text, encoding="utf-8")
        written += len(text)
        files += 1
    return files


def _sentences(paragraphs) -> list[str]:
    return [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p.strip()) if len(s) > 15]
