"""When the answerer declines, and how it follows a conversation: ``qa eval --near-domain``,
``--conversations``, ``--follow-ups`` and the verifier's calibration (``--calibrate``).

- **Near domain.** An index of half the XQuAD-R pool articles (numbers 0 and 1 mod 4) is
  asked every question: those of the other half (2 and 3 mod 4) should be declined, those
  of the indexed half answered. The tuning half is the even-numbered articles (indexed 0,
  left out 2 mod 4), the test half the odd ones.
- **Conversations.** Every question is asked after one or two earlier turns (asked and
  answered for real) about other articles, and compared with the same question asked
  alone: hit@1, answer-hit and the decline rate must not move. Every left-out question of
  the near-domain index is asked after turns about indexed articles: it must still be
  declined.
- **Follow-ups.** The hand-written conversations of ``bench/data/follow-ups.json``
  (English, Spanish and German follow-ups over the seed article and four XQuAD-R
  articles): the follow-up's first citation must contain the sentence the file names.

Everything reads the library's public results (``Index.ask``, ``Index.find_evidence``
and its verdict's signals), never its internals.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..encode.base import Embedder
from .benchmark import DEFAULT_DATA_DIR, DEFAULT_SEEDS_DIR, HALVES, Benchmark, Question, embedder_for, load_benchmark
from ..build.builder import build_index
from ..search.question_forms import read_question
from ..api import Index
from ..types import Answer
from ..search.verification import SIGNAL_NAMES, Calibration

FOLLOW_UPS_FILE = "follow-ups.json"
# The targets.
MIN_NEAR_DOMAIN_DECLINED = 0.80
MAX_FALSE_ABSTENTION = 0.05
MAX_CONVERSATION_DRIFT = 0.01
MIN_FOLLOW_UPS_CITED = 0.85


def indexed_in_near_domain(article: int) -> bool:
    """Whether the near-domain index holds ``article`` (numbers 0 and 1 mod 4)."""
    return article % 4 in (0, 1)


def _half_of(article: int) -> str:
    return "tune" if article % 2 == 0 else "test"


def _in_half(article: int, half: str) -> bool:
    return half == "all" or _half_of(article) == half


def build_pool_index(benchmark: Benchmark, folder: Path, embedder: Embedder, keep: Callable[[int], bool]) -> Index:
    """An index under ``folder`` of the pool's articles whose number ``keep`` accepts."""
    docs = folder / "docs"
    subset = Benchmark(benchmark.questions_language, benchmark.pool_language,
                       [a for a in benchmark.articles if keep(a.number)], [])
    subset.write_articles(docs)
    build_index(docs, folder / "index", model=embedder, rebuild=True, progress=False)
    return Index(folder / "index", model=embedder)


def covers_gold(question: Question, source: str, start: int, end: int) -> bool:
    """Whether the passage ``source[start:end]`` holds ``question``'s gold answer."""
    return source == f"article-{question.article:02d}.txt" and start <= question.start and end >= question.end


def history_of(turns: Sequence[tuple[str, Answer]]) -> list[dict]:
    """(question, answer) turns as the chat messages ``Index.ask`` takes as history."""
    history: list[dict] = []
    for asked, answer in turns:
        history += [{"role": "user", "content": asked}, {"role": "assistant", "content": answer.text}]
    return history


# ------------------------------------------------------------------------------ near domain
@dataclass
class NearDomainHalf:
    """One half: how many questions of left-out articles were declined, and how many of
    the indexed articles' (false abstention)."""

    left_out_questions: int
    declined: float
    indexed_questions: int
    false_abstention: float


@dataclass
class NearDomainReport:
    questions_language: str
    pool_language: str
    indexed_articles: int
    halves: dict[str, NearDomainHalf]
    targets: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_near_domain(questions: str = "en", pool: str = "es", *, data_dir: str | Path | None = None,
                         model: str | Embedder | None = None, work_dir: str | Path | None = None) -> NearDomainReport:
    """Index half the pool articles and ask every question (see the module docstring)."""
    benchmark = load_benchmark(questions, pool, data_dir)
    embedder = embedder_for(model)
    with _scratch(work_dir) as where:
        root = Path(where)
        index = build_pool_index(benchmark, root / "near-domain", embedder, indexed_in_near_domain)
        declined = {q.id: index.ask(q.text).abstained for q in benchmark.questions}
    halves = {}
    for half in HALVES:
        chosen = [q for q in benchmark.questions if _in_half(q.article, half)]
        left_out = [declined[q.id] for q in chosen if not indexed_in_near_domain(q.article)]
        indexed = [declined[q.id] for q in chosen if indexed_in_near_domain(q.article)]
        halves[half] = NearDomainHalf(len(left_out), _mean(left_out), len(indexed), _mean(indexed))
    report = NearDomainReport(questions, pool, sum(indexed_in_near_domain(a.number) for a in benchmark.articles), halves)
    everything = halves["all"]
    report.targets = {
        f"left-out questions declined >= {MIN_NEAR_DOMAIN_DECLINED:.0%}": everything.declined >= MIN_NEAR_DOMAIN_DECLINED,
        f"indexed questions declined <= {MAX_FALSE_ABSTENTION:.0%}": everything.false_abstention <= MAX_FALSE_ABSTENTION,
    }
    return report


def format_near_domain(report: NearDomainReport) -> str:
    lines = [f"qa eval --near-domain: {report.questions_language} questions -> {report.pool_language} pool, "
             f"{report.indexed_articles} of 48 articles indexed", "",
             "half   left-out  declined | indexed  declined (false abstention)"]
    for half, r in report.halves.items():
        lines.append(f"{half:<6} {r.left_out_questions:>8}  {r.declined:8.3f} | {r.indexed_questions:>7}  "
                     f"{r.false_abstention:8.3f}")
    return "\n".join(lines + ["", _targets_line(report.targets)])


# ---------------------------------------------------------------------------- conversations
@dataclass
class Outcomes:
    """Figures of one way of asking the same questions."""

    hit_at_1: float
    answer_hit: float
    declined: float


@dataclass
class ConversationHalf:
    """Answerable questions alone and after unrelated turns; left-out questions alone and
    after on-topic turns."""

    questions: int
    alone: Outcomes
    after_unrelated_turns: Outcomes
    left_out_questions: int
    left_out_declined_alone: float
    left_out_declined_after_on_topic_turns: float


@dataclass
class ConversationReport:
    questions_language: str
    pool_language: str
    halves: dict[str, ConversationHalf]
    targets: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_conversations(questions: str = "en", pool: str = "es", *, data_dir: str | Path | None = None,
                           model: str | Embedder | None = None,
                           work_dir: str | Path | None = None) -> ConversationReport:
    """Ask every question alone and after earlier turns (see the module docstring).

    The earlier turns of question ``i`` are the questions of the next one or two articles
    (alternately), each with the answer it gets alone: exactly what a user would have seen.
    """
    benchmark = load_benchmark(questions, pool, data_dir)
    embedder = embedder_for(model)
    by_article: dict[int, list[Question]] = {}
    for q in benchmark.questions:
        by_article.setdefault(q.article, []).append(q)
    articles = sorted(by_article)
    with _scratch(work_dir) as where:
        root = Path(where)
        full = build_pool_index(benchmark, root / "all", embedder, lambda _: True)
        near = build_pool_index(benchmark, root / "near-domain", embedder, indexed_in_near_domain)
        alone = {q.id: _asked(full, q) for q in benchmark.questions}
        alone_near = {q.id: near.ask(q.text) for q in benchmark.questions}
        in_conversation, left_out_after = {}, {}
        for i, q in enumerate(benchmark.questions):
            others = [a for a in articles if a != q.article]
            start = articles.index(q.article) if q.article in articles else 0
            earlier = [by_article[others[(start + j) % len(others)]] for j in range(1 + i % 2)]
            turns = [(e[i % len(e)].text, alone[e[i % len(e)].id][1]) for e in earlier]
            in_conversation[q.id] = _asked(full, q, history_of(turns))
            if not indexed_in_near_domain(q.article):
                on_topic = [a for a in articles if indexed_in_near_domain(a)]
                topics = [by_article[on_topic[(i + j) % len(on_topic)]] for j in range(1 + i % 2)]
                turns = [(e[i % len(e)].text, alone_near[e[i % len(e)].id]) for e in topics]
                left_out_after[q.id] = near.ask(q.text, history_of(turns)).abstained
    halves = {}
    for half in HALVES:
        chosen = [q for q in benchmark.questions if _in_half(q.article, half)]
        left_out = [q for q in chosen if not indexed_in_near_domain(q.article)]
        halves[half] = ConversationHalf(
            questions=len(chosen),
            alone=_outcomes(chosen, alone),
            after_unrelated_turns=_outcomes(chosen, in_conversation),
            left_out_questions=len(left_out),
            left_out_declined_alone=_mean(alone_near[q.id].abstained for q in left_out),
            left_out_declined_after_on_topic_turns=_mean(left_out_after[q.id] for q in left_out),
        )
    report = ConversationReport(questions, pool, halves)
    everything = halves["all"]
    drift = {name: abs(a - b) for name, a, b in zip(
        ("hit@1", "answer-hit", "declined"), astuple(everything.alone), astuple(everything.after_unrelated_turns))}
    drift["left-out declined"] = abs(everything.left_out_declined_alone - everything.left_out_declined_after_on_topic_turns)
    report.targets = {f"{name} moves <= {MAX_CONVERSATION_DRIFT:.0%} in a conversation": value <= MAX_CONVERSATION_DRIFT
                      for name, value in drift.items()}
    return report


def _asked(index: Index, question: Question, history: Sequence[dict] = ()) -> tuple[bool, Answer]:
    """(whether the first passage found covers the gold answer, the answer)."""
    hits = index.find_evidence(question.text, k=1, history=history).hits
    answer = index.ask(question.text, history)
    return bool(hits) and covers_gold(question, hits[0].source, hits[0].start, hits[0].end), answer


def _outcomes(questions: Sequence[Question], asked: dict[str, tuple[bool, Answer]]) -> Outcomes:
    def answer_hit(q: Question) -> bool:
        cited = asked[q.id][1].citations
        return bool(cited) and covers_gold(q, cited[0].source, cited[0].start, cited[0].end)

    return Outcomes(hit_at_1=_mean(asked[q.id][0] for q in questions), answer_hit=_mean(answer_hit(q) for q in questions),
                    declined=_mean(asked[q.id][1].abstained for q in questions))


def format_conversations(report: ConversationReport) -> str:
    lines = [f"qa eval --conversations: {report.questions_language} questions -> {report.pool_language} pool", "",
             "                 alone                    | after 1-2 unrelated turns | left-out questions declined",
             "half   questions hit@1  answer declined   | hit@1  answer declined    | alone  after on-topic turns"]
    for half, r in report.halves.items():
        a, c = r.alone, r.after_unrelated_turns
        lines.append(f"{half:<6} {r.questions:>9} {a.hit_at_1:.3f}  {a.answer_hit:.3f}  {a.declined:.3f}     | "
                     f"{c.hit_at_1:.3f}  {c.answer_hit:.3f}  {c.declined:.3f}      | {r.left_out_declined_alone:.3f}  "
                     f"{r.left_out_declined_after_on_topic_turns:.3f}")
    return "\n".join(lines + ["", _targets_line(report.targets)])


# ------------------------------------------------------------------------------- follow-ups
@dataclass(frozen=True)
class FollowUp:
    """A hand-written conversation: earlier turns, then a follow-up whose first citation
    must contain ``evidence``."""

    id: str
    document: str
    language: str
    turns: tuple[str, ...]
    follow_up: str
    evidence: str


@dataclass(frozen=True)
class FollowUpResult:
    id: str
    language: str
    cited: bool  # in the conversation, the first citation holds the evidence (and no abstention)
    cited_alone: bool  # the same follow-up asked with no conversation
    detected: bool  # read as referring back
    reading: str
    quote: str


@dataclass
class FollowUpReport:
    conversations: int
    cited: float
    cited_alone: float
    detected: float
    by_language: dict[str, float]
    by_document: dict[str, float]
    by_position: dict[str, float]  # even and odd places in the file: a split fixed before any measurement
    self_contained_flagged: dict[str, float]  # XQuAD-R questions read as referring back, by language
    results: list[FollowUpResult]
    targets: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def load_follow_ups(data_dir: str | Path | None = None) -> list[FollowUp]:
    """The hand-written follow-ups (``bench/data/follow-ups.json``)."""
    path = Path(data_dir or DEFAULT_DATA_DIR) / FOLLOW_UPS_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [FollowUp(c["id"], c["document"], c["language"], tuple(c["turns"]), c["follow_up"], c["evidence"])
            for c in raw["conversations"]]


def evaluate_follow_ups(*, data_dir: str | Path | None = None, seeds_dir: str | Path | None = None,
                        model: str | Embedder | None = None, work_dir: str | Path | None = None) -> FollowUpReport:
    """Ask each hand-written conversation's turns in order, then its follow-up."""
    embedder = embedder_for(model)
    follow_ups = load_follow_ups(data_dir)
    articles = sorted({int(f.document.split(":")[1]) for f in follow_ups if f.document.startswith("xquad-es:")})
    with _scratch(work_dir) as where:
        root = Path(where)
        docs = root / "seeds"
        shutil.copytree(seeds_dir or DEFAULT_SEEDS_DIR, docs, dirs_exist_ok=True)
        build_index(docs, root / "index-seeds", model=embedder, rebuild=True, progress=False)
        benchmark = load_benchmark("es", "es", data_dir)
        indexes = {"seeds": Index(root / "index-seeds", model=embedder),
                   "xquad-es": build_pool_index(benchmark, root / "xquad", embedder, lambda a: a in articles)}
        results = []
        for f in follow_ups:
            index = indexes[f.document.split(":")[0]]
            history: list[dict] = []
            for turn in f.turns:
                history += [{"role": "user", "content": turn}, {"role": "assistant", "content": index.ask(turn, history).text}]
            answer = index.ask(f.follow_up, history)
            reading = index.find_evidence(f.follow_up, history=history).verdict.reading
            results.append(FollowUpResult(
                f.id, f.language, _cites(answer, f.evidence), _cites(index.ask(f.follow_up), f.evidence),
                read_question(f.follow_up).refers_back, reading, answer.citations[0].quote if answer.citations else ""))
    languages = sorted({r.language for r in results})
    report = FollowUpReport(
        conversations=len(results),
        cited=_mean(r.cited for r in results),
        cited_alone=_mean(r.cited_alone for r in results),
        detected=_mean(r.detected for r in results),
        by_language={language: _mean(r.cited for r in results if r.language == language) for language in languages},
        by_document={document: _mean(r.cited for r, f in zip(results, follow_ups) if f.document == document)
                     for document in dict.fromkeys(f.document for f in follow_ups)},
        by_position={"even": _mean(r.cited for r in results[0::2]), "odd": _mean(r.cited for r in results[1::2])},
        self_contained_flagged={language: _mean(read_question(q.text).refers_back for q in
                                                load_benchmark(language, language, data_dir).questions)
                                for language in ("en", "es")},
        results=results,
    )
    report.targets = {f"follow-ups cite the right evidence >= {MIN_FOLLOW_UPS_CITED:.0%}": report.cited >= MIN_FOLLOW_UPS_CITED}
    return report


def _cites(answer: Answer, evidence: str) -> bool:
    return not answer.abstained and bool(answer.citations) and evidence in answer.citations[0].quote


def format_follow_ups(report: FollowUpReport) -> str:
    lines = [f"qa eval --follow-ups: {report.conversations} hand-written conversations", "",
             f"first citation holds the evidence: {report.cited:.3f} in the conversation, "
             f"{report.cited_alone:.3f} asked alone",
             "by language: " + ", ".join(f"{k} {v:.3f}" for k, v in report.by_language.items()),
             "by document: " + ", ".join(f"{k} {v:.3f}" for k, v in report.by_document.items()),
             "by place in the file: " + ", ".join(f"{k} {v:.3f}" for k, v in report.by_position.items()),
             f"read as referring back: {report.detected:.3f} of the follow-ups; XQuAD-R questions (self-contained) "
             + ", ".join(f"{k} {v:.3f}" for k, v in report.self_contained_flagged.items()), ""]
    lines += [f"  {'ok ' if r.cited else 'MISS'} {r.id:<16} {r.reading:<12} {r.quote[:70]}" for r in report.results]
    return "\n".join(lines + ["", _targets_line(report.targets)])


# ------------------------------------------------------------------------------ calibration
PAIRS = (("en", "es"), ("es", "es"), ("es", "en"), ("en", "en"))
# The decision threshold keeps this share of each pair's answerable tuning questions.
CALIBRATION_FALSE_ABSTENTION = 0.0425


def collect_signals(pairs: Iterable[tuple[str, str]] = PAIRS, *, data_dir: str | Path | None = None,
                    seeds_dir: str | Path | None = None, model: str | Embedder | None = None,
                    work_dir: str | Path | None = None) -> list[dict]:
    """The verdict signals of every question in every setting the verifier learns from:
    answerable (every article indexed; half of them indexed), left out of the near-domain
    index, and asked of an index of ``seeds/``. One dict per (question, setting)."""
    embedder = embedder_for(model)
    rows = []
    with _scratch(work_dir) as where:
        root = Path(where)
        seeds = root / "seeds-docs"
        shutil.copytree(seeds_dir or DEFAULT_SEEDS_DIR, seeds)
        build_index(seeds, root / "seeds-index", model=embedder, rebuild=True, progress=False)
        seeds_index = Index(root / "seeds-index", model=embedder)
        built: dict[str, tuple[Index, Index]] = {}
        for questions, pool in pairs:
            benchmark = load_benchmark(questions, pool, data_dir)
            if pool not in built:
                built[pool] = (build_pool_index(benchmark, root / f"all-{pool}", embedder, lambda _: True),
                               build_pool_index(benchmark, root / f"near-{pool}", embedder, indexed_in_near_domain))
            full, near = built[pool]
            for q in benchmark.questions:
                settings = [("answerable", full), ("near-domain" if not indexed_in_near_domain(q.article)
                                                    else "answerable-near", near), ("seeds", seeds_index)]
                for setting, index in settings:
                    signals = index.find_evidence(q.text).verdict.signals
                    if signals is not None:
                        rows.append({"pair": f"{questions}->{pool}", "question": f"{questions}:{q.id}",
                                     "half": _half_of(q.article), "setting": setting, "signals": list(astuple(signals))})
    return rows


def support_threshold(rows: Sequence[dict]) -> float:
    """The support threshold of encoders without word rarity, from the tuning half only.

    Pools the support of the answerable tuning questions (every article indexed) of every
    pair, and of the same questions asked of the seeds-only index (each once per question
    language); takes the threshold minimising (answerable abstain rate + unanswerable
    answer rate), then moves it halfway to the next lower observed support, away from the
    answerable side's edge.
    """
    at = SIGNAL_NAMES.index("support")
    tuning = [r for r in rows if r["half"] == "tune"]
    answerable = np.array([r["signals"][at] for r in tuning if r["setting"] == "answerable"])
    unanswerable = np.array(list({r["question"]: r["signals"][at] for r in tuning if r["setting"] == "seeds"}.values()))
    candidates = np.unique(np.concatenate([answerable, unanswerable]))
    cost = [(answerable < t).mean() + (unanswerable >= t).mean() for t in candidates]
    best = candidates[int(np.argmin(cost))]
    lower = candidates[candidates < best]
    return float((best + lower.max()) / 2) if len(lower) else float(best)


def fit_calibration(rows: Sequence[dict], *, false_abstention: float = CALIBRATION_FALSE_ABSTENTION,
                    l2: float = 0.01, steps: int = 4000) -> Calibration:
    """A logistic model on the tuning half's rows: answerable against the rest (classes
    weighted equally), then the bias moved so that in every language pair at most
    ``false_abstention`` of the answerable tuning questions (every article indexed) fall
    below the decision threshold."""
    tuning = [r for r in rows if r["half"] == "tune"]
    x = np.array([r["signals"] for r in tuning], dtype=np.float64)
    y = np.array([r["setting"].startswith("answerable") for r in tuning], dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    sample_weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    weights, bias = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):  # gradient descent: a convex problem of a dozen weights
        p = 1 / (1 + np.exp(-(z @ weights + bias)))
        gradient = (p - y) * sample_weight
        weights -= 0.1 * (z.T @ gradient / len(y) + l2 * weights)
        bias -= 0.1 * gradient.mean()
    logits = z @ weights + bias
    answerable = y == 1
    pairs = np.array([r["pair"] for r in tuning])
    shift = min(np.quantile(logits[answerable & (pairs == pair)], false_abstention) for pair in set(pairs.tolist()))
    return Calibration(mean=tuple(np.round(mean, 6).tolist()), scale=tuple(np.round(scale, 6).tolist()),
                       weights=tuple(np.round(weights, 6).tolist()), bias=round(float(bias - shift), 6))


def calibration_figures(rows: Sequence[dict], calibration: Calibration) -> dict[str, dict[str, float]]:
    """Per pair and half, the share of each setting's questions declined by ``calibration``."""
    declined: dict[str, dict[str, list[bool]]] = {}
    for r in rows:
        declined.setdefault(f"{r['pair']} {r['half']}", {}).setdefault(r["setting"], []).append(
            calibration.logit(r["signals"]) < 0)
    return {key: {setting: round(_mean(values), 4) for setting, values in settings.items()}
            for key, settings in sorted(declined.items())}


def format_calibration(calibration: Calibration, figures: dict[str, dict[str, float]]) -> str:
    lines = ["CALIBRATION = Calibration(", f"    mean={calibration.mean},", f"    scale={calibration.scale},",
             f"    weights={calibration.weights},", f"    bias={calibration.bias},", ")", "",
             "signals: " + ", ".join(SIGNAL_NAMES), "", "declined share by pair, half and setting:"]
    lines += [f"  {key:<14} " + "  ".join(f"{s} {v:.3f}" for s, v in settings.items()) for key, settings in figures.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- helpers
def _mean(values: Iterable) -> float:
    values = list(values)
    return float(np.mean(values)) if values else 0.0


def _targets_line(targets: dict[str, bool]) -> str:
    return "targets: " + "; ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in targets.items())


def _scratch(work_dir: str | Path | None) -> contextlib.AbstractContextManager[str | Path]:
    """``work_dir``, or a temporary folder removed afterwards (as :func:`qa.eval.benchmark.evaluate`)."""
    return tempfile.TemporaryDirectory(prefix="qa-eval-") if work_dir is None else contextlib.nullcontext(work_dir)
