"""Evidence for an answer: the sentences of the top passages that may answer a question,
and the verdict on whether the first one does (:mod:`qa.search.verification`).

A question that refers back to the conversation (:mod:`qa.search.question_forms`) is read
twice, alone and with the earlier questions it continues; a self-contained one gets exactly
the evidence it would get asked alone. A follow-up asks for something else than the turn
before: in its reading with the conversation, the sentences earlier answers answered with
are left out, and the rest are ordered by what the follow-up itself says (the document the
last answer quoted, the kind of answer it asks for, its own new words), without a weight
fitted to any follow-up.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
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
    read together with the earlier questions it continues (:func:`read_in_conversation`),
    and :func:`choose` takes one of the two readings. A self-contained question gets exactly
    the answer it would get asked alone.
    """
    return choose(read_in_conversation(snapshot, word_vectors, question, k, history))


@dataclass(frozen=True)
class Readings:
    """A question's findings read alone, and read with the earlier questions it continues
    (None for a self-contained question or one without history)."""

    alone: Findings
    with_context: Findings | None


def read_in_conversation(snapshot: Snapshot, word_vectors: WordVectors, question: str, k: int = 5,
                         history: Sequence[dict] = ()) -> Readings:
    """Both readings of ``question`` in a conversation. With the earlier questions, the
    reading finds the passages and the question's own words choose the sentence
    (:func:`_follow_up_order`), leaving out what earlier answers answered with."""
    alone = _findings(snapshot, word_vectors, question, question, k, "alone")
    earlier = _earlier_questions(history)
    if not earlier or not read_question(question).refers_back:
        return Readings(alone, None)
    follow_up = _follow_up(snapshot, word_vectors, question, earlier, history)
    return Readings(alone, _findings(snapshot, word_vectors, " ".join([*earlier, question]), question, k,
                                     "with context", quoted_before=_earlier_answers(history), follow_up=follow_up))


def choose(readings: Readings, context_confidence: float = verification.CONTEXT_CONFIDENCE) -> Findings:
    """The reading with the conversation if its verdict is supported at ``context_confidence``,
    by the new question's own words too (never by the earlier turns' alone), and it is more
    confident than the reading alone or quotes the same document (then it knows better which
    sentence is meant); else the reading alone."""
    alone, with_context = readings.alone, readings.with_context
    if with_context is None or not (with_context.verdict.supported and with_context.verdict.confidence >= context_confidence):
        return alone
    if with_context.verdict.confidence > alone.verdict.confidence or _same_document(alone, with_context):
        return with_context
    return alone


def _same_document(one: Findings, other: Findings) -> bool:
    """Whether both readings quote first from the same document: then the reading with the
    conversation knows better which of its sentences the follow-up asks for."""
    return bool(one.evidence and other.evidence) and one.evidence[0].hit.doc_id == other.evidence[0].hit.doc_id


def _findings(snapshot: Snapshot, word_vectors: WordVectors, reading_text: str, question: str, k: int, reading: str,
              quoted_before: str = "", follow_up: FollowUp | None = None) -> Findings:
    """Search ``reading_text`` and judge its first evidence sentence as an answer to
    ``question``. When the two differ (a follow-up read with the earlier questions), the
    reading finds the passages, and ``question`` alone picks the sentence in them,
    leaving out sentences found in ``quoted_before`` (what earlier answers answered with)
    and ordering the rest by ``follow_up`` (:func:`_follow_up_order`)."""
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
    if follow_up is not None:
        evidence = _follow_up_order(snapshot, word_vectors, hits, evidence, follow_up)
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
            snapshot, word_vectors, read_question(question), first):
        return replace(verdict, supported=False)
    return verdict


@dataclass(frozen=True)
class FollowUp:
    """What the sentence choice of a follow-up needs: its form, its new words (its own
    rarer words that no earlier question holds, as a translation or an inflection), and
    the sentence the last answer quoted first."""

    form: QuestionForm
    new_words: tuple[str, ...]
    last_quote: str


_NUMBERS = re.compile(r"\d+")


def _follow_up(snapshot: Snapshot, word_vectors: WordVectors, question: str, earlier: Sequence[str],
               history: Sequence[dict]) -> FollowUp:
    """What ``question`` says by itself after ``earlier`` questions, and what the last
    answer in ``history`` answered with."""
    form = read_question(question)
    own = list(dict.fromkeys(lexical.words(" ".join(form.own_words))))
    if own:
        own = [w for w, r in zip(own, snapshot.embedder.word_rarity(own).tolist()) if r >= verification.RARE_WORD_COST]
    before = sorted({w for q in earlier for w in lexical.words(q) if not is_cue_word(w)})
    if own and before:
        best = (word_vectors.of(snapshot, own) @ word_vectors.of(snapshot, before).T).max(axis=1)
        own = [w for w, b in zip(own, best.tolist()) if b < verification.OWN_WORD_MATCH]
    # numbers are words here ("1968", "2025"): nothing in a question is more specific
    numbers = [n for n in dict.fromkeys(_NUMBERS.findall(question)) if not any(n in q for q in earlier)]
    answers = [m for m in history if m.get("role") == "assistant"]
    return FollowUp(form, tuple(own + numbers), _first_quote(answers[-1]) if answers else "")


def _follow_up_order(snapshot: Snapshot, word_vectors: WordVectors, hits: list[Hit], evidence: list[Evidence],
                     follow_up: FollowUp) -> list[Evidence]:
    """The evidence of a follow-up reordered, ties kept in their order (the question's own
    choice, :func:`qa.search.ranking.choose_pieces`):

    1. sentences of the document the last answer quoted (the conversation's topic);
    2. sentences that can hold the kind of answer asked for (who -> a name, ...);
    3. sentences holding more of the follow-up's new words.
    """
    if not evidence:
        return evidence
    where = _place_of(hits, follow_up.last_quote)
    matched = _new_word_matches(snapshot, word_vectors, [e.text for e in evidence], follow_up.new_words)

    def key(i: int) -> tuple[bool, float, int]:
        item = evidence[i]
        other_document = where is not None and item.hit.doc_id != where
        return other_document, verification.kind_mismatch(follow_up.form.kind, item.text), -matched[i]

    return [evidence[i] for i in sorted(range(len(evidence)), key=key)]


def _new_word_matches(snapshot: Snapshot, word_vectors: WordVectors, sentences: list[str],
                      new_words: Sequence[str]) -> list[int]:
    """Per sentence, how many of ``new_words`` it holds: the word itself, accents aside
    ("iran" ~ "Irán"), or a translation or inflection (word cosine >= OWN_WORD_MATCH)."""
    if not new_words:
        return [0] * len(sentences)
    vocabulary = snapshot.generation.vocabulary
    new_vectors = word_vectors.of(snapshot, list(new_words))
    folded = [lexical.fold(w) for w in new_words]
    counts = []
    for sentence in sentences:
        words = sorted(set(lexical.words(sentence)))
        present = {lexical.fold(w) for w in words} | set(_NUMBERS.findall(sentence))
        found = np.array([f in present for f in folded])
        ids = list(vocabulary.ids(words).values())
        if ids:
            found |= (new_vectors @ vocabulary.vectors(ids).T).max(axis=1) >= verification.OWN_WORD_MATCH
        counts.append(int(found.sum()))
    return counts


def _place_of(hits: list[Hit], quote: str) -> str | None:
    """The document of the first of ``hits`` that holds ``quote`` (whitespace collapsed),
    if any, without the quotation marks the answerer put around it."""
    quote = quote.strip("“” ")
    if not quote:
        return None
    return next((hit.doc_id for hit in hits if quote in " ".join(hit.text.split())), None)


def _own_support(snapshot: Snapshot, word_vectors: WordVectors, form: QuestionForm, first: Evidence) -> bool:
    """Whether a follow-up supports, by itself, what its reading with the earlier questions
    found: one of its own rarer words (not a cue word) is in the quoted passage (itself,
    accents aside, or a translation or inflection), or, if it has none ("And when?",
    "¿Y quién más?"), the sentence can hold the kind of answer it asks for."""
    own = list(dict.fromkeys(lexical.words(" ".join(form.own_words))))
    if own:
        own = [w for w, r in zip(own, snapshot.embedder.word_rarity(own).tolist())
               if r >= verification.RARE_WORD_COST]
    if not own:
        return verification.kind_mismatch(form.kind, first.text) == 0.0
    return _new_word_matches(snapshot, word_vectors, [first.hit.text], own)[0] > 0


def _earlier_answers(history: Sequence[dict]) -> str:
    """The earlier answers' first quotes (the sentence each answered with)."""
    return " ".join(_first_quote(m) for m in history or () if m.get("role") == "assistant")


def _first_quote(answer: dict) -> str:
    """An answer's first quote, whitespace collapsed: its text up to the marker ``[1]``
    (the extractive answer's quotes are whole sentences, in quotation marks)."""
    return " ".join(str(answer.get("content", "")).split("[1]")[0].split())


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
