"""The XQuAD-R benchmark harness: protocol checks and a regression floor on a small slice."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.eval.benchmark import DEFAULT_DATA_DIR, evaluate, load_benchmark

# A slice of six articles (three per half), en questions over the es pool. Floors sit just
# below what this slice measured (hybrid hit@1 0.94, hit@5 1.00, MRR@10 0.97, answer-hit 0.68;
# dense hit@1 0.81; answer verification declines 5.1 % of the answerable questions and
# 99.4 % asked of seeds/): a regression in retrieval, evidence choice or abstention fails here.
# (The 5 % target on answerable questions holds on the full benchmark: `qa eval`, README.)
SLICE = range(6)
FLOORS = {"hit_at_1": 0.92, "hit_at_5": 0.97, "mrr_at_10": 0.94, "answer_hit": 0.65}


def test_gold_spans_are_the_pool_languages_answers():
    raw = json.loads((DEFAULT_DATA_DIR / "es.json").read_text(encoding="utf-8-sig"))["data"]
    answers = {q["id"]: q["answers"][0]["text"] for a in raw for p in a["paragraphs"] for q in p["qas"]}
    benchmark = load_benchmark("en", "es")
    assert len(benchmark.articles) == 48 and len(benchmark.questions) == 1190
    text_of = {a.number: a.text for a in benchmark.articles}
    for question in benchmark.questions:
        assert text_of[question.article][question.start:question.end] == answers[question.id]
    assert benchmark.questions[0].text == "How many points did the Panthers defense surrender?"
    assert {q.half for q in benchmark.questions if q.article == 3} == {"test"}


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="language must be one of en, es, got 'de'"):
        load_benchmark("de", "es")


@pytest.mark.slow
def test_a_slice_stays_above_its_floors():
    report = evaluate("en", "es", articles=SLICE)
    everything = report.halves["all"]
    hybrid, dense = everything.hybrid, everything.dense
    assert report.articles == 6 and everything.questions == sum(h.questions for n, h in report.halves.items() if n != "all")
    for name, floor in FLOORS.items():
        assert getattr(hybrid, name) >= floor, name
    assert hybrid.hit_at_1 > dense.hit_at_1 and hybrid.answer_hit > dense.answer_hit
    assert hybrid.abstain_answerable <= 0.06 and hybrid.abstain_seeds_only >= 0.95
    assert report.latency_ratio_median > 0 and report.indexing_chunks_per_second > 0


def test_eval_command_prints_json():
    result = CliRunner().invoke(cli, ["eval", "--questions", "es", "--pool", "es", "--articles", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["questions_language"] == report["pool_language"] == "es" and report["articles"] == 1
    assert set(report["halves"]) == {"tune", "test", "all"} and report["halves"]["test"]["questions"] == 0
    assert 0 <= report["halves"]["all"]["hybrid"]["hit_at_1"] <= 1
