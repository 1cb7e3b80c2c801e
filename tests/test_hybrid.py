"""Hybrid ranking and evidence over the seed article, with the bundled encoder."""

from __future__ import annotations

import numpy as np
import pytest

import qa
from qa.search import ranking as hybrid
from qa.search import searcher
from qa.search.translations import WordVectors
from qa.text import lexical

DRONES = "drones de Irán"


def gate(index, question):
    snapshot = index.snapshot()
    terms = hybrid.query_terms(question, qa.search.translations.Translations.none())
    rows = np.arange(snapshot.generation.rows.rows)
    return hybrid._language_gate(snapshot.generation.rows, rows, terms.token_hashes, hybrid.WEIGHTS)


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
    findings = index.find_evidence(question, k=1)
    hits, evidence = findings.hits, findings.evidence
    first = evidence[0]
    assert findings.verdict.supported and findings.verdict.reading == "alone"
    assert len(hits) == 1 and first.hit == hits[0] and DRONES in first.text
    assert first.hit.text[first.start - first.hit.start:first.end - first.hit.start] == first.text
    vector = index.embedder.encode_queries([question])[0]
    assert first.score == pytest.approx(float(index.embedder.encode_passages([first.text])[0] @ vector), abs=0.15)
    assert {e.hit.chunk_id for e in evidence} <= {h.chunk_id for h in index.retrieve(question, k=hybrid.EVIDENCE_CHUNKS)}


def test_query_terms_hash_the_questions_ngrams_and_tokens():
    terms = hybrid.query_terms("Irán, irán", qa.search.translations.Translations.none())
    assert terms.ngram_counts.tolist() == [2.0, 2.0, 2.0]
    assert terms.token_hashes.tolist() == sorted(lexical.token_hashes(["irán"]).tolist())


def test_a_question_without_words_to_translate_still_ranks(seed_index):
    hits = qa.load(seed_index).retrieve("¿y 2 a 1?", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score


def test_question_words_without_any_translation_score_zero():
    from qa.text.lexical import Collection, matches
    from qa.store.protocols import Neighbours
    from qa.search.translations import Translations

    nothing_close = Translations.of([Neighbours((3,), (0.4,))])
    assert nothing_close.words == 1 and len(nothing_close.ids) == 0
    found = matches(np.array([0, 1, 2]), np.array([3, 5], dtype=np.uint32), np.array([1, 2], dtype=np.uint16),
                    np.array([0, 1]), nothing_close.ids)
    scores = hybrid._translated_scores(found, 2, nothing_close, np.array([4, 4]), Collection(2, 8, np.ones(6, np.int32)))
    assert scores.tolist() == [0.0, 0.0]


WASHINGTON_POST = ("Según un reciente informe del Washington Post, Rusia también se está preparando, con la ayuda "
                   "de Irán, para producir más de 6.000 aviones no tripulados de ataque para 2025.")
KIRBY = ("El pasado mes de diciembre, Kirby afirmó que el Gobierno blanco tenía pruebas de que Corea del Norte había "
         "enviado un mes antes cohetes de artillería y misiles a un grupo militar privado ruso.")


def test_each_pieces_clause_cosine_is_its_own_best_clause_encoded_alone(seed_index):
    embedder = qa.load(seed_index).embedder
    question = embedder.encode_queries(["Who is helping Russia produce drones?"])[0]
    texts = ["Rusia recibió drones de Irán.", WASHINGTON_POST, KIRBY]
    best = hybrid.best_clause_cosines(texts, embedder.encode_passages, question)
    assert best[0] == -np.inf  # one clause: nothing to add to the sentence's own cosine
    for text, value in zip(texts[1:], best[1:]):
        clauses = embedder.encode_passages(qa.text.sentences.split_clauses(text)) @ question
        assert value == pytest.approx(float(clauses.max()), abs=1e-5)
    assert best[1] > best[2] + 0.1
    # the model, not the code: the clause that names the helper says more than the whole sentence
    assert best[1] > float(embedder.encode_passages([WASHINGTON_POST])[0] @ question)


def test_clause_evidence_can_change_the_sentence_quoted_first_but_not_its_support(seed_index):
    index = qa.load(seed_index)
    snapshot = index.snapshot()
    question = "Who supplied drones to Russia?"
    (reading,) = searcher.read(snapshot, WordVectors(), [question], 5)
    texts = [h.text for h in index.retrieve(question, k=hybrid.EVIDENCE_CHUNKS)]
    translations = reading.terms.translations
    words = snapshot.generation.vocabulary.words(translations.ids.tolist())
    plain = hybrid.choose_pieces(snapshot.generation.rows, reading.ranking, texts, translations, words)
    runner_up = max((c for c in plain if c.position == 0 and c is not plain[0]), key=lambda c: c.value)
    spans = [(int(a), int(b)) for a, b in snapshot.generation.rows.piece_spans_of(reading.ranking.pieces_of(0)[0])]
    asked = []

    def lift_runner_up(piece_texts):  # a clause of the runner-up matches the question perfectly
        asked.append(piece_texts)
        return np.array([1.0 if span == (runner_up.start, runner_up.end) else -np.inf for span in spans])

    lifted = hybrid.choose_pieces(snapshot.generation.rows, reading.ranking, texts, translations, words,
                                  score_clauses=lift_runner_up)
    assert (lifted[0].start, lifted[0].end) == (runner_up.start, runner_up.end) != (plain[0].start, plain[0].end)
    assert lifted[0].cosine == runner_up.cosine < 1.0
    assert len(asked) == 1 and len(asked[0]) == len(spans)  # the top chunk's pieces only
    others = lambda choices: sorted((c.position, c.start, c.value) for c in choices if c.position > 0)
    assert others(lifted) == others(plain)


def test_a_follow_up_is_searched_with_the_conversation_and_quoted_by_its_own_words(seed_index, monkeypatch):
    index = qa.load(seed_index)
    calls = []
    real = hybrid.best_clause_cosines

    def recording(piece_texts, encode, question):
        calls.append((list(piece_texts), question.copy()))
        return real(piece_texts, encode, question)

    monkeypatch.setattr(hybrid, "best_clause_cosines", recording)
    earlier = "Who does Kim Jong Un hope to meet in Russia?"
    history = [{"role": "user", "content": earlier}, {"role": "assistant", "content": index.ask(earlier).text}]
    calls.clear()
    question = "Which newspaper was the first to report it?"
    findings = index.find_evidence(question, k=3, history=history)
    # read alone and with the earlier question; the reading with context is the surer one
    assert findings.verdict.reading == "with context" and len(calls) == 2
    assert "El New York Times fue el primero" in findings.evidence[0].text
    texts, vector = calls[-1]
    assert texts and all(text in findings.hits[0].text for text in texts) and findings.evidence[0].text in texts
    # the sentence is chosen by the follow-up's own vector, within the passages found with context
    assert vector == pytest.approx(index.embedder.encode_queries([question])[0], abs=1e-5)