"""The benchmark's data: gold answer spans point at the answer text; sized corpora are real text."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
corpus = pytest.importorskip("corpus")


@pytest.fixture(scope="module")
def xquad():
    return corpus.DEFAULT_DATA_DIR  # shipped in bench/data


def test_gold_spans_cover_the_answer_in_the_written_documents(xquad, tmp_path):
    import json

    questions = corpus.write_quality_corpus(tmp_path)
    assert len(questions) == 1190 and len({q.source for q in questions}) == 48
    answers = {qa["id"]: qa["answers"][0]["text"]
               for a in json.loads((xquad / "es.json").read_text(encoding="utf-8-sig"))["data"]
               for p in a["paragraphs"] for qa in p["qas"]}
    for q in questions[::37]:
        assert (tmp_path / q.source).read_text(encoding="utf-8")[q.start:q.end] == answers[q.id]


def test_sized_corpus_has_distinct_documents(xquad, tmp_path):
    files = corpus.write_sized_corpus(tmp_path, 50)
    texts = [p.read_text(encoding="utf-8") for p in tmp_path.iterdir()]
    assert files == len(texts) == len(set(texts))
    assert sum(map(len, texts)) >= 50 * corpus.CHARS_PER_CHUNK
