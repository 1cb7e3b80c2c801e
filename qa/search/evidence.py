"""Evidence for an answer: the sentences of the top passages that may answer a question,
and the verdict on whether the first one does (:mod:`qa.search.verification`).

A question that refers back to the conversation (:mod:`qa.search.question_forms`) is read
twice, alone and with the earlier questions it continues; a self-contained one gets exactly
the evidence it would get asked alone.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..encode.base import capabilities
from ..store.protocols import MIN_TRANSLATION_COSINE
from ..text import lexical
from ..types import Evidence, EvidenceSignals, Findings, Hit, Verdict
from . import ranking as hybrid
from . import verification
from .question_forms import QuestionForm, answer_kind, is_cue_word, read_question
from .searcher import Reading, piece_cosines_by_place, read
from .searcher import hits as ranked_hits
from .snapshot import Snapshot
from .translations import WordVectors


def find_evidence(snapshot: Snapshot, word_vectors: WordVectors, question: str, k: int = 5,
                  history: Sequence[dict] = ()) -> Findings:
    """The top ``k`` passages, the sentences in them that may answer (best first: the first
    is the one to quote), and the verdict on whether it answers (:mod:`qa.search.verification`).

    ``history`` is the conversation so far (``{"role", "content"}`` messages). A question
    that refers back (a pronoun, "and ...?", "else": :mod:`qa.search.question_forms`) is also
    read together with the earlier questions it continues, and that reading is taken if
    the verdict on it is more confident, and it is supported by the new question's own
    words too, never by the earlier turns' alone. A self-contained question gets exactly
    the answer it would get asked alone.
    """
    alone = _findings(snapshot, word_vectors, question, question, k, "alone")
    earlier = _earlier_questions(history)
    if not earlier or not read_question(question).refers_back:
        return alone
    with_context = _findings(snapshot, word_vectors, " ".join([*earlier, question]), question, k, "with context",
                             quoted_before=_earlier_answers(history))
    if (with_context.verdict.supported and with_context.verdict.confidence >= verification.CONTEXT_CONFIDENCE
            and with_context.verdict.confidence > alone.verdict.confidence):
        return with_context
    return alone


def _findings(snapshot: Snapshot, word_vectors: WordVectors, reading_text: str, question: str, k: int, reading: str,
              quoted_before: str = "") -> Findings:
    """Search ``reading_text`` and judge its first evidence sentence as an answer to
    ``question``. When the two differ (a follow-up read with the earlier questions), the
    reading finds the passages, and ``question`` alone picks the sentence in them,
    leaving out sentences found in ``quoted_before`` (the earlier answers)."""
    if reading_text == question:
        (found,) = read(snapshot, word_vectors, [reading_text], k)
        chooser = found
    else:
        found, chooser = read(snapshot, word_vectors, [reading_text, question], k)
    rows = snapshot.generation.rows
    ranking = found.ranking
    hits = ranked_hits(snapshot, ranking, k)
    if chooser is not found:  # the same passages, their sentences scored against the question itself
        own_cosines = rows.piece_cosines(ranking.piece_rows, chooser.vector)
        choosing = replace(ranking, piece_cosines=own_cosines)
    else:
        choosing = ranking
    translations = chooser.terms.translations
    # quotes come only from the passages returned, which an LLM answerer also gets
    choices = hybrid.choose_pieces(
        rows, choosing, [h.text for h in hits], translations,
        snapshot.generation.vocabulary.words(translations.ids.tolist()),
        score_clauses=functools.partial(hybrid.best_clause_cosines, encode=snapshot.embedder.encode_passages,
                                        question=chooser.vector))
    # support is the reading's cosine: the choice's own unless the question chose in its place
    reading_cosine = piece_cosines_by_place(snapshot, ranking) if chooser is not found else None
    evidence = []
    for choice in choices:
        hit = hits[choice.position]
        text = hit.text[choice.start:choice.end]
        if quoted_before and " ".join(text.split()) in quoted_before:
            continue  # a follow-up moves on: the earlier answer already gave this sentence
        support = (choice.cosine if reading_cosine is None
                   else reading_cosine[(choice.position, choice.start, choice.end)])
        evidence.append(Evidence(hit, hit.start + choice.start, hit.start + choice.end, text, support))
    return Findings(hits[:k], evidence, _verdict(snapshot, word_vectors, found, hits, evidence, question, reading))


def _verdict(snapshot: Snapshot, word_vectors: WordVectors, found: Reading, hits: list[Hit], evidence: list[Evidence],
             question: str, reading: str) -> Verdict:
    """The verdict on the first evidence sentence (:mod:`qa.search.verification`)."""
    if not evidence:
        return Verdict(False, float("-inf"), reading)
    first = evidence[0]
    vocabulary = snapshot.generation.vocabulary
    position = next(i for i, hit in enumerate(hits) if hit is first.hit)
    if not capabilities(snapshot.embedder).word_rarity:
        return verification.judge_by_support(first.score, reading)
    # Question and reference words of every language are not content: left out, they
    # cannot weigh as rare ("dónde" costs 20 nats, as much as a name).
    words = [w for w in found.words if not is_cue_word(w)]
    rarity = snapshot.embedder.word_rarity(words)
    translated = [bool(found.neighbours[w].cosines) and found.neighbours[w].cosines[0] >= MIN_TRANSLATION_COSINE
                  for w in words]
    question_vectors = word_vectors.of(snapshot, words)
    passage_ids = snapshot.generation.rows.word_ids_of(int(found.ranking.rows[position]))
    passage_vectors = vocabulary.vectors(passage_ids.tolist())
    sentence_ids = set(vocabulary.ids(sorted(set(lexical.words(first.text)))).values())
    in_sentence = np.isin(passage_ids, np.array(sorted(sentence_ids), dtype=passage_ids.dtype))
    cosines = question_vectors @ passage_vectors.T if len(passage_ids) else np.zeros((len(words), 0), np.float32)
    passage_best = cosines.max(axis=1) if cosines.shape[1] else np.zeros(len(words), np.float32)
    sentence_best = cosines[:, in_sentence].max(axis=1) if in_sentence.any() else np.zeros(len(words), np.float32)
    scores = found.ranking.scores
    runner_up = max((float(x) for i, x in enumerate(scores.tolist()) if i != position), default=0.0)
    signals = EvidenceSignals(
        support=first.score,
        fused=float(scores[position]),
        margin=float(scores[position]) - runner_up,
        language_gate=found.ranking.language_gate,
        kind_mismatch=verification.kind_mismatch(answer_kind(question), first.text),
        **verification.word_signals(
            [verification.QuestionWord(float(r), t) for r, t in zip(rarity.tolist(), translated)],
            passage_best, sentence_best),
        same_document=verification.same_document(first.hit, hits),
    )
    verdict = verification.judge(signals, reading)
    if reading == "with context" and verdict.supported and not _own_support(
            snapshot, word_vectors, read_question(question), first.text, passage_vectors):
        return replace(verdict, supported=False)
    return verdict


def _own_support(snapshot: Snapshot, word_vectors: WordVectors, form: QuestionForm, sentence: str,
                 passage_vectors: np.ndarray) -> bool:
    """Whether a follow-up supports, by itself, what its reading with the earlier questions
    found: one of its own rarer words (not a cue word) matches a word of the passage, or,
    if it has none ("And when?", "¿Y quién más?"), the sentence can hold the kind of
    answer it asks for."""
    own = list(dict.fromkeys(lexical.words(" ".join(form.own_words))))
    if own:
        own = [w for w, r in zip(own, snapshot.embedder.word_rarity(own).tolist())
               if r >= verification.RARE_WORD_COST]
    if not own:
        return verification.kind_mismatch(form.kind, sentence) == 0.0
    if not len(passage_vectors):
        return False
    best = float((word_vectors.of(snapshot, own) @ passage_vectors.T).max())
    return best >= verification.OWN_WORD_MATCH


def _earlier_answers(history: Sequence[dict]) -> str:
    """The earlier answers' text, whitespace collapsed (their quotes are verbatim sentences)."""
    return " ".join(" ".join(str(m.get("content", "")).split()) for m in history or () if m.get("role") == "assistant")


def _earlier_questions(history: Sequence[dict], limit: int = 3) -> list[str]:
    """The earlier questions a follow-up continues, oldest first: the last one, and before it
    those it continued in turn (while each one refers back), at most ``limit``."""
    asked = [str(m.get("content", "")).strip() for m in history or () if m.get("role") == "user"]
    asked = [q for q in asked if q]
    chosen: list[str] = []
    for earlier in reversed(asked):
        chosen.insert(0, earlier)
        if len(chosen) == limit or not read_question(earlier).refers_back:
            break
    return chosen
