"""The cross-lingual retrieval benchmark behind ``qa eval`` (XQuAD-R, bench/data/).

Protocol: the pool is the 48 articles of the pool language, each one document (its
paragraphs joined by a blank line), indexed by :func:`qa.build_index` with the index's
normal chunker. The questions are the 1,190 questions in the question language; the
articles are parallel, so each question's gold answer is a character span of a pool
article. Figures:

- hit@k: one of the top k passages of ``Index.retrieve`` covers the gold span; MRR@10;
- answer-hit: the first citation of ``Index.ask`` quotes a sentence containing the span
  (whether or not the answer abstained: abstention is reported on its own);
- abstain rate on these answerable questions, and on the same questions asked of an index
  of ``seeds/`` alone, which cannot answer them;
- the same retrieval figures for dense-only retrieval (``mode="dense"``) and word BM25 on
  the same chunks, and the answer-hit of dense retrieval quoting the sentence of its top
  passage closest to the question;
- query latency: the median over questions of the ratio of a hybrid ``retrieve`` to a
  dense one on the same index, timed back to back in alternating order;
- indexing throughput of the pool.

Every figure is given for the tuning half (questions of even-indexed articles, which the
weights and the threshold were fitted on), the test half (odd) and all questions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..text import lexical
from ..encode.base import Embedder
from ..encode.models import load_embedder
from ..build.builder import build_index
from ..api import Index
from ..search.verification import SUPPORT_THRESHOLD

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO / "bench" / "data"
DEFAULT_SEEDS_DIR = REPO / "seeds"
LANGUAGES = ("en", "es")
HALVES = ("tune", "test", "all")
TOP_K = 10


@dataclass(frozen=True)
class Question:
    """A benchmark question with its gold answer span in a pool article (``source`` is the
    article's file name as :meth:`Benchmark.write_articles` writes it)."""

    id: str
    text: str
    article: int
    start: int
    end: int
    source: str = ""

    @property
    def half(self) -> str:
        return "tune" if self.article % 2 == 0 else "test"


@dataclass(frozen=True)
class Article:
    """A pool article as one document: its number in the benchmark, file name and text."""

    number: int
    name: str
    text: str


@dataclass(frozen=True)
class Benchmark:
    """Pool articles and the questions asked of them."""

    questions_language: str
    pool_language: str
    articles: list[Article]
    questions: list[Question]

    def write_articles(self, folder: Path) -> int:
        """Write the pool into ``folder``, one .txt per article; returns the characters written."""
        folder.mkdir(parents=True, exist_ok=True)
        for article in self.articles:
            (folder / article.name).write_text(article.text, encoding="utf-8", newline="")
        return sum(len(a.text) for a in self.articles)


def load_benchmark(questions: str = "en", pool: str = "es", data_dir: str | Path | None = None,
                   articles: Sequence[int] | None = None) -> Benchmark:
    """The benchmark for one language pair; ``articles`` restricts it to those article numbers."""
    for language in (questions, pool):
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    pool_data = read_articles(data_dir, pool)
    question_texts = {q["id"]: q["question"] for a in read_articles(data_dir, questions) for p in a["paragraphs"] for q in p["qas"]}
    chosen = set(range(len(pool_data)) if articles is None else articles)
    documents, asked = [], []
    for number, article in enumerate(pool_data):
        if number not in chosen:
            continue
        offset, paragraphs = 0, []
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                start = offset + answer["answer_start"]
                asked.append(Question(qa["id"], question_texts[qa["id"]], number, start, start + len(answer["text"]),
                                      _article_name(number)))
            paragraphs.append(paragraph["context"])
            offset += len(paragraph["context"]) + 2
        documents.append(Article(number, _article_name(number), "\n\n".join(paragraphs)))
    return Benchmark(questions, pool, documents, asked)


def _article_name(number: int) -> str:
    return f"article-{number:02d}.txt"


def read_articles(data_dir: Path, language: str) -> list[dict]:
    """The raw SQuAD-format articles of ``language`` in ``data_dir`` (``{language}.json``)."""
    path = data_dir / f"{language}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))["data"]
    except FileNotFoundError:
        raise FileNotFoundError(f"benchmark data not found: {path} (expected bench/data/{language}.json)") from None


@dataclass
class Figures:
    """Retrieval and answer figures of one system on one half (None where not measured)."""

    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float
    answer_hit: float | None = None
    abstain_answerable: float | None = None
    abstain_seeds_only: float | None = None


@dataclass
class HalfReport:
    """One half (tune, test or all): question count and each system's figures."""

    questions: int
    hybrid: Figures
    dense: Figures
    bm25: Figures


@dataclass
class EvalReport:
    """What ``qa eval`` prints; ``to_dict`` is its ``--json``."""

    questions_language: str
    pool_language: str
    model: str
    articles: int
    chunks: int
    chunk_settings: dict[str, int]
    support_threshold: float
    halves: dict[str, HalfReport]
    latency_ratio_median: float
    hybrid_retrieve_ms_median: float
    dense_retrieve_ms_median: float
    indexing_seconds: float
    indexing_chunks_per_second: float
    indexing_characters_per_second: float
    seconds: float
    load_average: tuple[float, float]  # 1-minute load before and after: timings need a quiet machine
    targets: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Outcome:
    """What one question got from each system."""

    hybrid_rank: int | None  # 0-based rank of the first covering passage within TOP_K
    dense_rank: int | None
    bm25_rank: int | None
    answer_hit: bool
    abstained: bool
    dense_answer_hit: bool
    seeds_abstained: bool


def evaluate(questions: str = "en", pool: str = "es", *, data_dir: str | Path | None = None,
             seeds_dir: str | Path | None = None, model: str | Embedder | None = None,
             articles: Sequence[int] | None = None, work_dir: str | Path | None = None,
             progress: bool = False) -> EvalReport:
    """Run the benchmark for one language pair and return every figure (see the module doc).

    ``model`` is as for :func:`qa.build_index`. The indexes are built in ``work_dir`` (a
    temporary folder by default).
    """
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    benchmark = load_benchmark(questions, pool, data_dir, articles)
    embedder = embedder_for(model)
    embedder.encode_queries(["warm up"])  # load the weights before timing the build
    folder = tempfile.TemporaryDirectory(prefix="qa-eval-") if work_dir is None else contextlib.nullcontext(work_dir)
    with folder as where:
        root = Path(where)
        docs = root / f"pool-{pool}"
        characters = benchmark.write_articles(docs)
        started = time.perf_counter()
        report = build_index(docs, root / f"index-{pool}", model=embedder, rebuild=True, progress=progress)
        indexing_seconds = time.perf_counter() - started
        build_index(seeds_dir or DEFAULT_SEEDS_DIR, root / "index-seeds", model=embedder, rebuild=True, progress=False)
        index = Index(root / f"index-{pool}", model=embedder)
        seeds_index = Index(root / "index-seeds", model=embedder)
        outcomes = _ask_all(benchmark, index, seeds_index, progress)
        ratio, hybrid_ms, dense_ms = measure_latency(Index(root / f"index-{pool}", model=embedder), benchmark.questions)
        chunks, chunking = index.stats().chunks, index.snapshot().manifest.chunking
    halves = {half: _half_report(benchmark.questions, outcomes, half) for half in HALVES}
    result = EvalReport(
        questions_language=questions, pool_language=pool, model=embedder.model, articles=len(benchmark.articles),
        chunks=chunks, chunk_settings=chunking, support_threshold=SUPPORT_THRESHOLD,
        halves=halves, latency_ratio_median=ratio, hybrid_retrieve_ms_median=hybrid_ms, dense_retrieve_ms_median=dense_ms,
        indexing_seconds=indexing_seconds, indexing_chunks_per_second=report.chunks / indexing_seconds,
        indexing_characters_per_second=characters / indexing_seconds, seconds=time.perf_counter() - began,
        load_average=(load_before, os.getloadavg()[0]),
    )
    result.targets = _targets(result)
    return result


def _ask_all(benchmark: Benchmark, index: Index, seeds_index: Index, progress: bool) -> list[_Outcome]:
    from tqdm.auto import tqdm

    bm25 = _Bm25Baseline(index)
    numbers = {article.name: article.number for article in benchmark.articles}
    outcomes = []
    for q in tqdm(benchmark.questions, desc=f"{benchmark.questions_language}->{benchmark.pool_language}",
                  unit="question", disable=not progress):
        covers = functools.partial(_covers, numbers, q)
        hybrid = index.retrieve(q.text, k=TOP_K)
        dense = index.retrieve(q.text, k=TOP_K, mode="dense")
        answer = index.ask(q.text)
        cited = answer.citations[0] if answer.citations else None
        outcomes.append(_Outcome(
            hybrid_rank=_first(covers(h.source, h.start, h.end) for h in hybrid),
            dense_rank=_first(covers(h.source, h.start, h.end) for h in dense),
            bm25_rank=_first(covers(source, start, end) for source, start, end in bm25.top(q.text, TOP_K)),
            answer_hit=cited is not None and covers(cited.source, cited.start, cited.end),
            abstained=answer.abstained,
            dense_answer_hit=_baseline_answer_hit(index, q.text, covers),
            seeds_abstained=seeds_index.ask(q.text).abstained,
        ))
    return outcomes


def _covers(numbers: dict[str, int], question: Question, source: str, start: int, end: int) -> bool:
    """Whether ``source[start:end]`` contains the gold answer of ``question``."""
    return numbers.get(source) == question.article and start <= question.start and end >= question.end


def _first(flags: Iterable[bool]) -> int | None:
    """The position of the first true flag, or None."""
    return next((i for i, flag in enumerate(flags) if flag), None)


def _baseline_answer_hit(index: Index, question: str, covers: Callable[[str, int, int], bool]) -> bool:
    """Dense retrieval's answer: the sentence piece of its top passage closest to the question."""
    trace = index.trace(question, k=1, mode="dense")
    if not trace.hits or not trace.sentences[0]:
        return False
    sentences = trace.sentences[0]
    start, end, _ = sentences[int(np.argmax([cosine for _, _, cosine in sentences]))]
    return covers(trace.hits[0].source, start, end)


class _Bm25Baseline:
    """Word BM25 (Lucene idf, k1=1.2, b=0.75, no stop words, no stemming) over the index's chunks."""

    def __init__(self, index: Index) -> None:
        chunks = index.passages()
        self.located = [(c.source, c.start, c.end) for c in chunks]
        rows = [lexical.tokens(c.text) for c in chunks]
        self.columns = {t: i for i, t in enumerate(sorted({t for row in rows for t in row}))}
        counts = np.zeros((len(rows), len(self.columns)), dtype=np.float32)
        for i, row in enumerate(rows):
            np.add.at(counts[i], [self.columns[t] for t in row], 1.0)
        lengths = counts.sum(axis=1)
        df = (counts > 0).sum(axis=0)
        collection = lexical.Collection(len(rows), int(lengths.sum()), df)
        idf = collection.idf(np.arange(len(self.columns)))
        self.weights = lexical.bm25_weights(counts, lengths[:, None], idf[None, :], collection.average_length)

    def top(self, question: str, k: int) -> list[tuple[str, int, int]]:
        columns = sorted({self.columns[t] for t in lexical.tokens(question) if t in self.columns})
        if not columns:
            return []
        scores = self.weights[:, columns].sum(axis=1)
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.located[i] for i in order if scores[i] > 0]


def measure_latency(index: Index, questions: Sequence[Question]) -> tuple[float, float, float]:
    """Median per-question ratio hybrid/dense retrieve, and each one's median time (ms).

    ``index`` is freshly loaded: its word cache holds only the words of questions timed
    before, as in a stream of real questions. Order alternates to spread drift evenly.
    """
    index.retrieve("warm up the caches", k=TOP_K)
    index.retrieve("warm up the caches", k=TOP_K, mode="dense")
    hybrid_times, dense_times = [], []
    for i, q in enumerate(questions):
        timed = {}
        for mode in (("dense", "hybrid") if i % 2 == 0 else ("hybrid", "dense")):
            started = time.perf_counter()
            index.retrieve(q.text, k=TOP_K, mode=mode)
            timed[mode] = time.perf_counter() - started
        hybrid_times.append(timed["hybrid"])
        dense_times.append(timed["dense"])
    ratios = [h / d for h, d in zip(hybrid_times, dense_times)]
    return statistics.median(ratios), 1000 * statistics.median(hybrid_times), 1000 * statistics.median(dense_times)


def _half_report(questions: Sequence[Question], outcomes: Sequence[_Outcome], half: str) -> HalfReport:
    chosen = [o for q, o in zip(questions, outcomes) if half == "all" or q.half == half]

    def mean(values: Iterable) -> float:
        return float(np.mean(list(values))) if chosen else 0.0

    def ranked(attribute: str) -> tuple[float, float, float]:
        ranks = [getattr(o, attribute) for o in chosen]
        return (mean(r == 0 for r in ranks), mean(r is not None and r < 5 for r in ranks),
                mean(1.0 / (r + 1) if r is not None else 0.0 for r in ranks))

    return HalfReport(
        questions=len(chosen),
        hybrid=Figures(*ranked("hybrid_rank"), answer_hit=mean(o.answer_hit for o in chosen),
                       abstain_answerable=mean(o.abstained for o in chosen),
                       abstain_seeds_only=mean(o.seeds_abstained for o in chosen)),
        dense=Figures(*ranked("dense_rank"), answer_hit=mean(o.dense_answer_hit for o in chosen)),
        bm25=Figures(*ranked("bm25_rank")),
    )


# The targets, per language pair, on all questions.
_TARGETS: dict[tuple[str, str], dict[str, float]] = {
    ("en", "es"): {"hit_at_1": 0.88, "hit_at_5": 0.98, "answer_hit": 0.70},
    ("es", "es"): {"hit_at_1": 0.93},
}
MAX_ABSTAIN_ANSWERABLE = 0.05
MIN_ABSTAIN_SEEDS_ONLY = 0.95
MAX_LATENCY_RATIO = 1.5


def _targets(report: EvalReport) -> dict[str, bool]:
    everything = report.halves["all"]
    hybrid, dense = everything.hybrid, everything.dense
    met = {f"{name} >= {floor}": getattr(hybrid, name) >= floor
           for name, floor in _TARGETS.get((report.questions_language, report.pool_language), {}).items()}
    met["not worse than dense-only (hit@1, hit@5, MRR@10)"] = all(
        getattr(hybrid, n) >= getattr(dense, n) for n in ("hit_at_1", "hit_at_5", "mrr_at_10"))
    met[f"abstain on answerable <= {MAX_ABSTAIN_ANSWERABLE:.0%}"] = hybrid.abstain_answerable <= MAX_ABSTAIN_ANSWERABLE
    met[f"abstain seeds-only >= {MIN_ABSTAIN_SEEDS_ONLY:.0%}"] = hybrid.abstain_seeds_only >= MIN_ABSTAIN_SEEDS_ONLY
    met[f"latency ratio <= {MAX_LATENCY_RATIO}x"] = report.latency_ratio_median <= MAX_LATENCY_RATIO
    return met


def format_report(report: EvalReport) -> str:
    """The text ``qa eval`` prints: a table with the baselines beside the hybrid figures."""

    def f(x: float | None) -> str:
        return "  -  " if x is None else f"{x:.3f}"

    lines = [
        f"qa eval: {report.questions_language} questions -> {report.pool_language} pool "
        f"({report.articles} articles, {report.chunks} chunks of {report.chunk_settings['size']}/"
        f"{report.chunk_settings['overlap']}, encoder {report.model}, support threshold {report.support_threshold})",
        "",
        "                  hybrid                                         | dense-only                    | BM25",
        "half   questions  hit@1  hit@5  MRR@10 answer abst.ans abst.seed | hit@1  hit@5  MRR@10 answer | hit@1  hit@5  MRR@10",
    ]
    for half, r in report.halves.items():
        h, d, b = r.hybrid, r.dense, r.bm25
        lines.append(
            f"{half:<6} {r.questions:>9}  {f(h.hit_at_1)}  {f(h.hit_at_5)}  {f(h.mrr_at_10)}  {f(h.answer_hit)}  "
            f"{f(h.abstain_answerable)}    {f(h.abstain_seeds_only)}   | {f(d.hit_at_1)}  {f(d.hit_at_5)}  "
            f"{f(d.mrr_at_10)}  {f(d.answer_hit)} | {f(b.hit_at_1)}  {f(b.hit_at_5)}  {f(b.mrr_at_10)}")
    lines += [
        "",
        f"query latency: hybrid retrieve {report.hybrid_retrieve_ms_median:.2f} ms, dense {report.dense_retrieve_ms_median:.2f} ms "
        f"(medians); median per-question ratio {report.latency_ratio_median:.2f}x",
        f"indexing: {report.chunks} chunks in {report.indexing_seconds:.1f} s = {report.indexing_chunks_per_second:.0f} chunks/s "
        f"({report.indexing_characters_per_second / 1000:.0f}k characters/s), end to end",
        "",
        "targets: " + "; ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in report.targets.items()),
        f"({report.seconds:.0f} s; load average {report.load_average[0]:.1f} before, {report.load_average[1]:.1f} after: "
        "on a busy machine read the ratios, not the milliseconds)",
    ]
    return "\n".join(lines)


def embedder_for(model: str | Embedder | None) -> Embedder:
    """``model`` itself if it is an encoder, else the encoder it names (the bundled one for None)."""
    return model if model is not None and not isinstance(model, str) else load_embedder(model)
