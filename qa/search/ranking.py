"""Hybrid ranking of dense candidates, and the choice of the sentence to quote.

Stage 1 re-ranks the top :data:`CANDIDATES` chunks of the dense search with five features,
all read from stored rows (nothing is encoded):

- ``d``: cosine of the question and the chunk;
- ``m``: the best cosine of the question and one of the chunk's sentence pieces;
- ``w``: the best cosine with a piece's window (the piece plus half of each neighbour);
- ``x``: char-4-gram BM25, divided by its maximum over the candidates;
- ``t``: translated BM25: word BM25 of the vocabulary words that stand in for the question's
  words (:mod:`qa.store.vocabulary`), divided by its maximum over the candidates.

``score = A d + B m + E w + lam x + T t`` with ``lam`` between ``WX`` and ``WL`` by a
language gate: the share of the question's tokens among the most frequent tokens of the
top candidates' documents (about 0 across languages, 0.4 within one), so char n-grams count
fully only when question and documents share a language. The score is reported divided by
the sum of the weights, a weighted mean of the features.

Stage 2 picks the sentence to quote: the piece of the top chunk with the highest
``c + CT tp + CLEN ln(length)``, where ``tp`` is the piece's translated BM25 relative to
the chunk's best piece and ``c`` its cosine with the question, or the best cosine of one
of its clauses if higher: a long sentence whose answer sits in one clause is diluted by
the others (the clauses are encoded at query time, for the top chunk only). The piece's
own cosine is the support the abstention threshold is set on.

The weights were fitted on the tuning half (even-indexed articles) of XQuAD-R only, by
coordinate ascent on hit@1 + 0.25 hit@5 averaged over en/es question/pool pairs; nothing
in them refers to a language.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..text import lexical
from ..store.protocols import RankingRowStore, window_sums
from ..text.lexical import Collection
from ..text.sentences import split_clauses
from .translations import Translations

# Dense candidates re-ranked per question.
CANDIDATES = 50
# The language gate looks at the documents of this many top dense candidates.
GATE_CANDIDATES = 10
# Sentences to quote are looked for in this many top chunks.
EVIDENCE_CHUNKS = 3


@dataclass(frozen=True)
class Weights:
    """Fusion weights; defaults tuned for 1500/215 chunks (the module docstring's letters in comments)."""

    dense: float = 0.5  # A
    best_piece: float = 0.75  # B
    best_window: float = 0.75  # E
    ngram_across_languages: float = 0.2  # WX
    ngram_within_language: float = 0.8  # WL
    gate_start: float = 0.2  # L0
    gate_width: float = 0.3  # LW
    translated: float = 0.3  # T
    evidence_translated: float = 0.3  # CT
    evidence_length: float = 0.06  # CLEN


WEIGHTS = Weights()


@dataclass(frozen=True)
class QueryTerms:
    """What the lexical features need of a question."""

    ngram_ids: np.ndarray  # sorted distinct hashed 4-grams
    ngram_counts: np.ndarray  # float32, occurrences of each
    token_hashes: np.ndarray  # sorted distinct hashed tokens (for the language gate)
    translations: Translations


def query_terms(question: str, translations: Translations) -> QueryTerms:
    """The 4-grams and tokens of ``question``, with its words' translations."""
    # a question has a few dozen terms: counted in Python, faster than np.unique's machinery
    counted = Counter(lexical.ngram_buckets(question).tolist())
    ids = sorted(counted)
    tokens = sorted(set(lexical.token_hashes(set(lexical.tokens(question))).tolist()))
    return QueryTerms(np.array(ids, dtype=np.uint32), np.array([counted[i] for i in ids], dtype=np.float32),
                      np.array(tokens, dtype=np.uint32), translations)


@dataclass(frozen=True)
class Ranking:
    """Candidates re-ranked, best first, with their pieces' cosines for stage 2."""

    rows: np.ndarray  # chunk rows, best first
    scores: np.ndarray  # weighted mean of the features, best first
    piece_rows: np.ndarray  # pieces of all candidates, grouped by candidate
    piece_owner: np.ndarray  # position in ``rows`` of each piece's chunk
    piece_cosines: np.ndarray
    language_gate: float  # how surely the question shares its documents' language, 0..1

    def pieces_of(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """(piece rows, cosines) of the chunk at ``position`` in the ranking."""
        mine = self.piece_owner == position
        return self.piece_rows[mine], self.piece_cosines[mine]


def rank(features: RankingRowStore, vector: np.ndarray, terms: QueryTerms, rows: np.ndarray, dense: np.ndarray,
         weights: Weights = WEIGHTS) -> Ranking:
    """Re-rank dense candidates ``rows`` (best first, cosines ``dense``) by the fused score."""
    n = len(rows)
    pieces, owner = features.pieces(rows)
    cosines = features.piece_cosines(pieces, vector)
    window = window_sums(cosines, owner)
    window /= features.window_norms_of(pieces)
    best_piece = _max_per_owner(cosines, owner, n, fallback=dense)
    best_window = _max_per_owner(window, owner, n, fallback=dense)

    ngram = lexical.match_scores(
        features.ngram_matches(rows, terms.ngram_ids), n,
        terms.ngram_ids, terms.ngram_counts, features.ngram_lengths_of(rows), features.ngrams)
    translations = terms.translations
    translated = _translated_scores(
        features.word_matches(rows, translations.ids), n,
        translations, features.word_lengths_of(rows), features.words)

    gate = _language_gate(features, rows[:GATE_CANDIDATES], terms.token_hashes, weights)
    lam = weights.ngram_across_languages + (weights.ngram_within_language - weights.ngram_across_languages) * gate
    fused = (weights.dense * dense + weights.best_piece * best_piece + weights.best_window * best_window
             + lam * _relative(ngram) + weights.translated * _relative(translated))
    scores = fused / (weights.dense + weights.best_piece + weights.best_window + lam + weights.translated)
    order = np.argsort(-scores, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    return Ranking(rows[order], scores[order], pieces, position[owner], cosines, gate)


@dataclass(frozen=True)
class PieceChoice:
    """A candidate sentence to quote: a piece of the chunk at ``position`` in the ranking."""

    position: int
    start: int  # offsets in the chunk
    end: int
    cosine: float  # support: the question's cosine with the piece
    value: float  # the stage-2 score that orders the choices


def choose_pieces(features: RankingRowStore, ranking: Ranking, chunk_texts: list[str], translations: Translations,
                  translation_words: dict[int, str], *, score_clauses: Callable[[list[str]], np.ndarray] | None = None,
                  weights: Weights = WEIGHTS) -> list[PieceChoice]:
    """The pieces of the top chunks, the one to quote first, then by stage-2 value.

    ``chunk_texts`` are the texts of the top chunks in ranking order; ``translation_words``
    maps the translations' vocabulary ids to the words; ``score_clauses`` gives the top
    chunk's pieces, from their texts, their best clause cosines (:func:`best_clause_cosines`).
    """
    by_word = {translation_words[int(i)]: (int(i), int(g), float(w)) for i, g, w in
               zip(translations.ids, translations.group, translations.weight) if int(i) in translation_words}
    pieces_total = max(features.piece_total, 1)
    average_piece_words = features.words.total_length / pieces_total
    choices: list[PieceChoice] = []
    for position, text in enumerate(chunk_texts[:EVIDENCE_CHUNKS]):
        piece_rows, cosines = ranking.pieces_of(position)
        if len(piece_rows) == 0:
            continue
        spans = features.piece_spans_of(piece_rows)
        texts = [text[a:b] for a, b in spans.tolist()]
        translated = _relative(np.array([
            _translated_piece_score(t, by_word, features.words, average_piece_words) for t in texts
        ], dtype=np.float32))
        lengths = np.log(np.maximum([len(t) for t in texts], 1))
        similarity = cosines if position or score_clauses is None else np.maximum(cosines, score_clauses(texts))
        values = similarity + weights.evidence_translated * translated + weights.evidence_length * lengths
        choices.extend(PieceChoice(position, int(a), int(b), float(c), float(v))
                       for (a, b), c, v in zip(spans.tolist(), cosines, values))
    if not choices:
        return []
    first = max((c for c in choices if c.position == 0), key=lambda c: c.value, default=None)
    rest = sorted((c for c in choices if c is not first), key=lambda c: -c.value)
    return ([first] if first is not None else []) + rest


def best_clause_cosines(piece_texts: list[str], encode: Callable[[list[str]], np.ndarray],
                        question: np.ndarray) -> np.ndarray:
    """Per piece, the best cosine of ``question`` (a unit vector) with one of its clauses
    (:func:`qa.text.sentences.split_clauses`) encoded by ``encode``; -inf for a piece without clauses."""
    clauses = [split_clauses(text) for text in piece_texts]
    best = np.full(len(piece_texts), -np.inf, dtype=np.float32)
    flat = [clause for found in clauses for clause in found]
    if flat:
        owner = np.repeat(np.arange(len(piece_texts)), [len(found) for found in clauses])
        np.maximum.at(best, owner, encode(flat) @ question)
    return best


def _translated_scores(found: lexical.Matches, n: int, translations: Translations, row_lengths: np.ndarray,
                       collection: Collection) -> np.ndarray:
    """Per row: sum over question words of the best cosine x BM25 among the word's translations.

    ``found`` are the rows' :func:`lexical.matches` of ``translations.ids``.
    """
    if len(found.term) == 0:
        return np.zeros(n, dtype=np.float32)
    owner, term = found.owner, found.term
    weights = lexical.bm25_weights(found.counts, row_lengths[owner], collection.idf(translations.ids[term]),
                                   collection.average_length) * translations.weight[term]
    best = np.zeros((n, translations.words), dtype=np.float32)
    np.maximum.at(best, (owner, translations.group[term]), weights)
    return best.sum(axis=1)


def _translated_piece_score(text: str, by_word: dict[str, tuple[int, int, float]], collection: Collection,
                            average_length: float) -> float:
    """Translated BM25 of one piece: its words are counted here, idf comes from the chunk rows."""
    found = lexical.words(text)
    counts = Counter(w for w in found if w in by_word)
    if not counts:
        return 0.0
    words = list(counts)
    ids = np.array([by_word[w][0] for w in words], dtype=np.int64)
    weights = lexical.bm25_weights(np.array([counts[w] for w in words]), np.full(len(words), len(found)),
                                   collection.idf(ids), average_length)
    best: dict[int, float] = {}
    for word, weight in zip(words, weights.tolist()):
        _, group, cosine = by_word[word]
        best[group] = max(best.get(group, 0.0), weight * cosine)
    return sum(best.values())


def _language_gate(features: RankingRowStore, rows: np.ndarray, token_hashes: np.ndarray, weights: Weights) -> float:
    """How surely the question shares its documents' language, in [0, 1]."""
    if len(token_hashes) == 0 or len(rows) == 0:
        return 0.0
    profiles = features.profiles_of(rows)
    # token_hashes are sorted: one binary search per profile token (a third of the time
    # of comparing every pair)
    found = token_hashes[np.minimum(np.searchsorted(token_hashes, profiles), len(token_hashes) - 1)] == profiles
    shared = (found & (profiles != 0)).sum(axis=1).max()
    share = float(shared) / len(token_hashes)
    return min(max((share - weights.gate_start) / weights.gate_width, 0.0), 1.0)  # np.clip: 15x slower on a float


def _max_per_owner(values: np.ndarray, owner: np.ndarray, n: int, fallback: np.ndarray) -> np.ndarray:
    """Per candidate, the max of its pieces' values (its dense cosine if it has no pieces)."""
    result = np.asarray(fallback, dtype=np.float32).copy()
    if len(values):
        starts = np.concatenate([[0], np.nonzero(owner[1:] != owner[:-1])[0] + 1])
        result[owner[starts]] = np.maximum.reduceat(values, starts)
    return result


def _relative(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)
