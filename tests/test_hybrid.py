"""Hybrid ranking and evidence over the seed article, with the bundled encoder."""

from __future__ import annotations

import numpy as np
import pytest

import qa
from qa import hybrid, lexical

DRONES = "drones de Irán"


def gate(index, question):
    snapshot = index.snapshot()
    terms = hybrid.query_terms(question, qa.vocabulary.Translations.none())
    rows = np.arange(snapshot.features.rows)
    return hybrid._language_gate(snapshot.features, rows, terms.token_hashes, hybrid.WEIGHTS)


def test_the_language_gate_opens_only_for_the_documents_language(seed_index):
    index = qa.load(seed_index)
    assert gate(index, "¿Quién suministró drones a Rusia en la guerra contra Ucrania?") > 0.5
    assert gate(index, "Who supplied drones to Russia in the war against Ukraine?") == 0.0


def test_hybrid_scores_are_weighted_means_in_order(seed_index):
    hits = qa.load(seed_index).retrieve("¿Quién suministró drones a Rusia?", k=10)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert DRONES in hits[0].text


def test_dense_mode_ranks_by_the_passage_cosine(seed_index):
    index = qa.load(seed_index)
    question = "Who supplied drones to Russia?"
    hits = index.retrieve(question, k=3, mode="dense")
    vectors = index.embedder.encode_passages([h.text for h in hits])
    assert [h.score for h in hits] == pytest.approx((vectors @ index.embedder.encode_queries([question])[0]).tolist(), abs=1e-4)
    with pytest.raises(ValueError, match="mode must be one of hybrid, dense, got 'sparse'"):
        index.retrieve(question, mode="sparse")


def test_evidence_is_a_sentence_of_the_top_passage_scored_by_its_cosine(seed_index):
    index = qa.load(seed_index)
    question = "Who supplied drones to Russia?"
    hits, evidence = index.find_evidence(question, k=1)
    first = evidence[0]
    assert len(hits) == 1 and first.hit == hits[0] and DRONES in first.text
    assert first.hit.text[first.start - first.hit.start:first.end - first.hit.start] == first.text
    vector = index.embedder.encode_queries([question])[0]
    assert first.score == pytest.approx(float(index.embedder.encode_passages([first.text])[0] @ vector), abs=0.15)
    assert {e.hit.chunk_id for e in evidence} <= {h.chunk_id for h in index.retrieve(question, k=hybrid.EVIDENCE_CHUNKS)}


def test_query_terms_hash_the_questions_ngrams_and_tokens():
    terms = hybrid.query_terms("Irán, irán", qa.vocabulary.Translations.none())
    assert terms.ngram_counts.tolist() == [2.0, 2.0, 2.0]
    assert terms.token_hashes.tolist() == sorted(lexical.token_hashes(["irán"]).tolist())


def test_a_question_without_words_to_translate_still_ranks(seed_index):
    hits = qa.load(seed_index).retrieve("¿y 2 a 1?", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score


def test_question_words_without_any_translation_score_zero():
    from qa.lexical import Collection, matches
    from qa.vocabulary import Neighbours, Translations

    nothing_close = Translations.of([Neighbours((3,), (0.4,))])
    assert nothing_close.words == 1 and len(nothing_close.ids) == 0
    found = matches(np.array([0, 1, 2]), np.array([3, 5], dtype=np.uint32), np.array([1, 2], dtype=np.uint16),
                    np.array([0, 1]), nothing_close.ids)
    scores = hybrid._translated_scores(found, 2, nothing_close, np.array([4, 4]), Collection(2, 8, np.ones(6, np.int32)))
    assert scores.tolist() == [0.0, 0.0]
