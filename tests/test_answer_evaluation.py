"""qa eval's answer measures: the follow-up data, and the near-domain run on a few real articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.eval.answers import evaluate_near_domain, format_near_domain, indexed_in_near_domain, load_follow_ups
from qa.eval.benchmark import DEFAULT_DATA_DIR, DEFAULT_SEEDS_DIR, load_benchmark, read_articles
from qa.search.question_forms import read_question


def test_every_follow_up_names_evidence_found_once_in_its_document():
    follow_ups = load_follow_ups()
    assert len(follow_ups) >= 40 and len({f.id for f in follow_ups}) == len(follow_ups)
    assert {f.language for f in follow_ups} == {"en", "es", "de"}
    seed_text = next(DEFAULT_SEEDS_DIR.glob("*.txt")).read_text(encoding="utf-8")
    articles = {a.number: a.text for a in load_benchmark("es", "es").articles}
    for f in follow_ups:
        text = seed_text if f.document == "seeds" else articles[int(f.document.split(":")[1])]
        assert text.count(f.evidence) == 1, f.id
        assert f.turns and f.follow_up not in f.turns


def test_follow_ups_are_detected_as_referring_back():
    follow_ups = load_follow_ups()
    detected = sum(read_question(f.follow_up).refers_back for f in follow_ups)
    assert detected / len(follow_ups) >= 0.85


@pytest.fixture(scope="module")
def eight_articles(tmp_path_factory) -> Path:
    """A copy of the benchmark data cut to its first eight articles (two of each residue mod 4)."""
    folder = tmp_path_factory.mktemp("xquad-8")
    for language in ("en", "es"):
        data = {"data": read_articles(DEFAULT_DATA_DIR, language)[:8]}
        (folder / f"{language}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_near_domain_declines_left_out_articles_far_more_than_indexed_ones(eight_articles):
    report = evaluate_near_domain("es", "es", data_dir=eight_articles)
    questions = load_benchmark("es", "es", eight_articles).questions
    everything = report.halves["all"]
    assert report.indexed_articles == 4
    assert everything.left_out_questions == sum(not indexed_in_near_domain(q.article) for q in questions)
    assert everything.indexed_questions + everything.left_out_questions == len(questions)
    assert everything.declined >= 0.5 and everything.false_abstention <= 0.2
    assert "left-out" in format_near_domain(report)
