"""Follow-ups measured on XQuAD-R, not on the hand-written set: the threshold of the reading
with the conversation, and follow-ups built from XQuAD-R question pairs.

    python bench/follow_ups.py --calibrate [--questions en|es]   # CONTEXT_CONFIDENCE sweep
    python bench/follow_ups.py --built [--questions en|es]       # XQuAD-R-built follow-ups

``--calibrate``: an index of half the Spanish articles (numbers 0 and 1 mod 4, as ``qa eval
--near-domain``); every question of a left-out article is asked after one or two turns about
indexed articles, exactly as ``qa eval --conversations`` does. Such a question must stay
declined; the reading with the conversation is taken only above a confidence threshold
(:data:`qa.search.verification.CONTEXT_CONFIDENCE`), and this prints, per threshold, the share
declined in the tuning half (even articles) and the test half, beside the share declined
asked alone. The threshold is the smallest one at which the tuning half of both question
languages stays within half a point of alone (half the issue's budget of one point).

``--built``: for every question Q2 of the Spanish articles, the earlier turn Q1 is the
question of the same article, answered by another sentence, that shares most rarer words
(SentencePiece cost >= RARE_WORD_COST) with Q2; the follow-up is Q2 without those shared
words, opened by "And"/"¿Y" ("What is a turbine's theoretical Carnot efficiency?" then
"And what is the approximate condenser temperature in a?"). Every fourth such pair is asked
(Q1, then the follow-up with Q1 and its real answer as history); the follow-up is answered
if its first citation covers Q2's gold answer. Nothing in the follow-up rules was fitted to
these; they show whether what helps the hand-written set generalises.

This reads :mod:`qa.search.evidence` internals (each reading's verdict), which ``qa eval``
does not expose.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# qa from this checkout: run as a script, Python puts bench/ first and would import whichever
# qa is installed (another checkout's, in a shared virtual environment)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.eval import answers  # noqa: E402
from qa.eval.benchmark import Benchmark, Question, embedder_for, load_benchmark  # noqa: E402
from qa.search import evidence, verification  # noqa: E402
from qa.search.question_forms import is_cue_word, read_question  # noqa: E402
from qa.text import lexical  # noqa: E402
from qa.text.sentences import split_sentences  # noqa: E402

THRESHOLDS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def calibrate(questions: str, root: Path) -> None:
    benchmark = load_benchmark(questions, "es")
    embedder = embedder_for(None)
    near = answers.build_pool_index(benchmark, root / "near", embedder, answers.indexed_in_near_domain)
    by_article: dict[int, list[Question]] = {}
    for q in benchmark.questions:
        by_article.setdefault(q.article, []).append(q)
    on_topic = [a for a in sorted(by_article) if answers.indexed_in_near_domain(a)]
    asked: dict[str, object] = {}
    rows = []
    for i, q in enumerate(benchmark.questions):
        if answers.indexed_in_near_domain(q.article):
            continue
        readings = near.readings(q.text, 5)
        row = {"half": q.article % 2, "alone": bool(readings.alone.evidence) and readings.alone.verdict.supported,
               "context": None}
        if read_question(q.text).refers_back:  # the turns as `qa eval --conversations` builds them
            topics = [by_article[on_topic[(i + j) % len(on_topic)]] for j in range(1 + i % 2)]
            turns = [(e[i % len(e)].text, asked.setdefault(e[i % len(e)].id, near.ask(e[i % len(e)].text)))
                     for e in topics]
            readings = near.readings(q.text, 5, answers.history_of(turns))
            # the reading with the conversation, when chosen at no threshold at all
            if readings.with_context is not None and evidence.choose(readings, 0.0) is readings.with_context:
                row["context"] = readings.with_context.verdict.confidence
        rows.append(row)

    def declined(threshold: float, half: int) -> float:
        chosen = [r for r in rows if r["half"] == half]
        return sum(not (r["context"] is not None and r["context"] >= threshold) and not r["alone"]
                   for r in chosen) / len(chosen)

    print(f"{questions} questions -> es pool: {len(rows)} left-out questions, "
          f"{sum(r['context'] is not None for r in rows)} with a supported reading with the conversation")
    print(f"  declined alone: tune {declined(float('inf'), 0):.4f}  test {declined(float('inf'), 1):.4f}")
    for threshold in THRESHOLDS:
        print(f"  threshold {threshold:5.2f}: tune {declined(threshold, 0):.4f}  test {declined(threshold, 1):.4f}")


def built_follow_ups(benchmark: Benchmark) -> list[tuple[Question, Question, str]]:
    """(earlier question, question, follow-up) for every fourth XQuAD-R question that has a partner."""
    embedder = embedder_for(None)
    sentences = {a.number: split_sentences(a.text) for a in benchmark.articles}

    def sentence_of(q: Question) -> int:
        return next((i for i, (a, b) in enumerate(sentences[q.article]) if a <= q.start < b), -1)

    def rare_words(text: str) -> set[str]:
        words = [w for w in dict.fromkeys(lexical.words(text)) if not is_cue_word(w)]
        return {w for w, r in zip(words, embedder.word_rarity(words).tolist()) if r >= verification.RARE_WORD_COST} \
            if words else set()

    by_article: dict[int, list[Question]] = {}
    for q in benchmark.questions:
        by_article.setdefault(q.article, []).append(q)
    cases = []
    for q2 in benchmark.questions:
        own, place = rare_words(q2.text), sentence_of(q2)
        best = None
        for q1 in by_article[q2.article]:
            shared = own & rare_words(q1.text)
            if q1 is q2 or not shared or sentence_of(q1) == place:
                continue
            key = (len(shared), -abs(q1.start - q2.start))
            if best is None or key > best[0]:
                best = (key, q1, shared)
        if best is None:
            continue
        _, q1, shared = best
        body = " ".join(t for t in q2.text.split() if not set(lexical.words(t)) & shared).lstrip("¿¡").rstrip()
        if body:
            opening = "And " if benchmark.questions_language == "en" else "¿Y "
            text = opening + body[0].lower() + body[1:]
            cases.append((q1, q2, text if text.endswith("?") else text + "?"))
    return cases[::4]


def built(questions: str, root: Path) -> None:
    benchmark = load_benchmark(questions, "es")
    index = answers.build_pool_index(benchmark, root / "all", embedder_for(None), lambda _: True)
    cases = built_follow_ups(benchmark)
    started = time.perf_counter()
    cited = {0: [], 1: []}
    for q1, q2, text in cases:
        history = [{"role": "user", "content": q1.text}, {"role": "assistant", "content": index.ask(q1.text).text}]
        answer = index.ask(text, history)
        first = answer.citations[0] if answer.citations and not answer.abstained else None
        cited[q2.article % 2].append(first is not None and answers.covers_gold(q2, first.source, first.start, first.end))
    every = cited[0] + cited[1]
    print(f"{questions} questions -> es pool: {len(every)} XQuAD-R-built follow-ups, first citation covers the "
          f"answer: {sum(every) / len(every):.3f} (tune {sum(cited[0]) / len(cited[0]):.3f}, test "
          f"{sum(cited[1]) / len(cited[1]):.3f}) [{time.perf_counter() - started:.0f} s]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--built", action="store_true")
    parser.add_argument("--questions", choices=("en", "es"), default="en")
    args = parser.parse_args()
    if not (args.calibrate or args.built):
        parser.error("choose --calibrate or --built")
    with tempfile.TemporaryDirectory(prefix="qa-follow-ups-") as where:
        if args.calibrate:
            calibrate(args.questions, Path(where))
        if args.built:
            built(args.questions, Path(where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
