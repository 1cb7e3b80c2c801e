"""Whether the sentence to quote answers the question: a calibrated check beyond the cosine.

A question near the documents' topic that they do not answer ("What is the population of
the Greater Los Angeles Area?" over articles that never mention Los Angeles) still finds a
sentence with a fair cosine: the cosine alone declines only half of such questions at 5 %
false abstention. What separates them is that the question's own rare words, or their
translations, are missing from the passage. So the check weighs, for the first evidence
sentence (:class:`qa.types.EvidenceSignals`):

- the cosines: the sentence's (support), the passage's hybrid score and its lead over the
  second passage;
- word matching across languages: each question word's best cosine with a word of the
  passage (word vectors of the index's vocabulary graph), averaged with the word's rarity
  as weight (its SentencePiece unigram cost: "the", "qué", "wann" weigh little in every
  language); the same over the rarer words only, inside the quoted sentence, and the worse
  of the two rarest words; and how much rarity has no translation in the index at all;
- the kind of answer: a "how many"/"when" question needs a number in the sentence, a
  "who"/"where" question a name (:mod:`qa.search.question_forms`);
- the language gate of the ranking (whether question and documents share a language),
  since cosines run higher within a language;
- how many of the other passages found come from the quoted passage's document.

A logistic model combines them. Its weights and threshold were fitted by ``qa eval
--calibrate`` on the tuning half of XQuAD-R only (even-numbered articles): answerable
questions (every article indexed, and half of them) against the questions of articles left
out of the index and against every question asked of an index of ``seeds/``, in the en/es
question/pool pairs alike; nothing in it names a language. The word signals need the
encoder's word rarity, which the bundled encoder declares (``word_rarity``); with another
encoder the check falls back to the support threshold alone (:data:`SUPPORT_THRESHOLD`).
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Sequence

import numpy as np

from .question_forms import AnswerKind, can_hold
from ..types import EvidenceSignals, Hit, Verdict

# Below this support (the question's cosine with the sentence to quote) an encoder without
# word rarity abstains: calibrated for the bundled encoder on the tuning half of XQuAD-R,
# answerable questions against the same questions asked of an index of seeds/ alone.
SUPPORT_THRESHOLD = 0.1977
# Question words rarer than this (nats) are the "rarer words" of the signals; function
# words of every language cost 5-8.
RARE_WORD_COST = 8.0
# Rarity above this counts when a word has no translation in the index (only names and
# terms: "harvard", "ctenophora", not "does").
UNKNOWN_WORD_COST = 10.0
# A follow-up's own rarer word counts as found in a passage at this word cosine (a
# translation or an inflection: "built" ~ "construir" 0.8, "junio" ~ "june" 0.9).
OWN_WORD_MATCH = 0.75
# A follow-up's reading with the earlier questions must be this sure (a logit) to be taken:
# on-topic earlier turns make any passage of their topic look plausible. Calibrated on
# XQuAD-R only (`python bench/follow_ups.py --calibrate`): the questions of left-out
# articles asked after on-topic turns, as `qa eval --conversations` asks them, must stay
# declined; 1.25 is the smallest threshold at which the tuning half of both en->es and
# es->es stays within half a point of the share declined alone (1.0 loses 1.2 and 2.3).
CONTEXT_CONFIDENCE = 1.25


@dataclass(frozen=True)
class QuestionWord:
    """A question word as the check sees it."""

    rarity: float  # SentencePiece unigram cost, nats
    translated: bool  # the index has a translation of it (a vocabulary word at cosine >= 0.6)


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic model over the signals, in the order of EvidenceSignals' fields."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def logit(self, signals: Sequence[float]) -> float:
        """The model's log-odds that the sentence answers, from the signals' values in the
        order of SIGNAL_NAMES; the decision threshold is 0."""
        return self.bias + sum(w * (x - m) / s for w, x, m, s in zip(self.weights, signals, self.mean, self.scale))


SIGNAL_NAMES = tuple(f.name for f in fields(EvidenceSignals))
# Fitted by `qa eval --calibrate` on the tuning half (see the module docstring), weights in
# the order of SIGNAL_NAMES; the bias includes the decision threshold, set so that each
# en/es question/pool pair declines at most 4.25 % of its answerable tuning questions.
CALIBRATION = Calibration(
    mean=(0.297644, 0.449475, 0.123941, 0.252244, 0.114788, 0.739818, 0.722327, 0.669086, 0.641238, 1.060251, 0.588984),
    scale=(0.210983, 0.170465, 0.101851, 0.349945, 0.318765, 0.143844, 0.169228, 0.177486, 0.205857, 1.426713, 0.387496),
    weights=(1.072968, 1.024329, 0.366403, -0.558683, -0.232518, 0.604107, 0.700918, 0.777268, 0.341405, -0.530407, 0.132385),
    bias=1.007066,
)


def word_signals(words: Sequence[QuestionWord], passage_cosines: np.ndarray,
                 sentence_cosines: np.ndarray) -> dict[str, float]:
    """The word-matching signals from each question word's best cosine with a word of the
    passage and of the sentence (rows in the order of ``words``)."""
    rarity = np.array([w.rarity for w in words], dtype=np.float64)
    passage = np.clip(np.asarray(passage_cosines, dtype=np.float64), 0.0, None)
    sentence = np.clip(np.asarray(sentence_cosines, dtype=np.float64), 0.0, None)
    rare = np.maximum(rarity - RARE_WORD_COST, 0.0)

    def weighted(values: np.ndarray, weights: np.ndarray) -> float:
        total = float(weights.sum())
        return float((values * weights).sum() / total) if total > 0 else 0.0

    rarest = np.argsort(-rarity, kind="stable")[:2]
    unknown = sum(max(w.rarity - UNKNOWN_WORD_COST, 0.0) for w in words if not w.translated)
    return {
        "passage_match": weighted(passage, rarity),
        "rare_passage_match": weighted(passage, rare),
        "rare_sentence_match": weighted(sentence, rare),
        "rarest_match": float(passage[rarest].min()) if len(rarest) else 0.0,
        "unknown_rarity": math.log1p(unknown),
    }


def same_document(quoted: Hit, hits: Sequence[Hit]) -> float:
    """The share of the other passages found that come from the quoted passage's document:
    an answer's neighbours cluster in its document, a near miss's scatter."""
    others = [h for h in hits if h is not quoted]
    return sum(h.doc_id == quoted.doc_id for h in others) / len(others) if others else 0.0


def kind_mismatch(kind: AnswerKind, sentence: str) -> float:
    """1.0 if ``sentence`` cannot hold an answer of ``kind``, else 0.0."""
    return 0.0 if can_hold(kind, sentence) else 1.0


def judge(signals: EvidenceSignals, reading: str, calibration: Calibration = CALIBRATION) -> Verdict:
    """The verdict of the calibrated model on ``signals``."""
    confidence = calibration.logit(astuple(signals))
    return Verdict(supported=confidence >= 0.0, confidence=round(confidence, 4), reading=reading, signals=signals)


def judge_by_support(support: float, reading: str) -> Verdict:
    """The verdict of the support threshold alone, for encoders without word rarity."""
    return Verdict(supported=support >= SUPPORT_THRESHOLD, confidence=round(support - SUPPORT_THRESHOLD, 4),
                   reading=reading)
