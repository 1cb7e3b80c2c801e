"""Answer verification: word signals on hand-made values, the calibrated model, the encoder's word rarity."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search import verification
from qa.eval.answers import calibration_figures, fit_calibration
from qa.encode.models import load_embedder
from qa.types import EvidenceSignals
from qa.search.verification import Calibration, QuestionWord, word_signals

THE, DRONES, IRAN = QuestionWord(5.0, True), QuestionWord(14.0, True), QuestionWord(18.0, True)


def test_a_missing_function_word_costs_little_a_missing_rare_word_much():
    all_found = word_signals([THE, DRONES, IRAN], np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]))
    no_the = word_signals([THE, DRONES, IRAN], np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0]))
    no_iran = word_signals([THE, DRONES, IRAN], np.array([1.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]))
    assert all_found["passage_match"] == pytest.approx(1.0)
    assert no_the["rare_passage_match"] == pytest.approx(1.0)  # below RARE_WORD_COST: not counted
    assert no_the["passage_match"] == pytest.approx(32 / 37)
    assert no_iran["rare_passage_match"] == pytest.approx(6 / 16)
    assert no_iran["rarest_match"] == 0.0 and no_the["rarest_match"] == 1.0


def test_sentence_match_and_negative_cosines():
    found = word_signals([DRONES, IRAN], np.array([0.9, -0.2]), np.array([0.5, -0.3]))
    assert found["rare_passage_match"] == pytest.approx(0.9 * 6 / 16)  # negative cosines count as 0
    assert found["rare_sentence_match"] == pytest.approx(0.5 * 6 / 16)


def test_unknown_rarity_counts_rare_words_the_index_cannot_translate():
    untranslated_rare, untranslated_common = QuestionWord(20.0, False), QuestionWord(7.0, False)
    signals = word_signals([untranslated_rare, untranslated_common, DRONES], np.ones(3), np.ones(3))
    assert signals["unknown_rarity"] == pytest.approx(np.log1p(20.0 - verification.UNKNOWN_WORD_COST))
    assert word_signals([DRONES], np.ones(1), np.ones(1))["unknown_rarity"] == 0.0


def signals(**values: float) -> EvidenceSignals:
    defaults = {name: 0.0 for name in verification.SIGNAL_NAMES}
    return EvidenceSignals(**{**defaults, **values})


def test_the_verdict_follows_the_calibrated_logit():
    n = len(verification.SIGNAL_NAMES)
    support_only = Calibration(mean=(0.3,) + (0.0,) * (n - 1), scale=(0.1,) + (1.0,) * (n - 1),
                               weights=(2.0,) + (0.0,) * (n - 1), bias=-1.0)
    assert verification.judge(signals(support=0.5), "alone", support_only).supported  # 2 * 2 - 1 = 3
    weak = verification.judge(signals(support=0.32), "alone", support_only)
    assert not weak.supported and weak.confidence == pytest.approx(-0.6)


def test_encoders_without_word_rarity_fall_back_to_the_support_threshold():
    assert verification.judge_by_support(verification.SUPPORT_THRESHOLD + 0.01, "alone").supported
    assert not verification.judge_by_support(verification.SUPPORT_THRESHOLD - 0.01, "alone").supported


def test_the_bundled_encoder_knows_how_rare_words_are_in_any_language():
    rarity = dict(zip(*[words := ["the", "de", "und", "drones", "ctenophora", "varsovia"]],
                      load_embedder(None).word_rarity(words).tolist()))
    assert max(rarity["the"], rarity["de"], rarity["und"]) < verification.RARE_WORD_COST
    assert rarity["drones"] > verification.RARE_WORD_COST
    assert rarity["ctenophora"] > rarity["drones"] and rarity["varsovia"] > rarity["drones"]


def test_calibration_fit_separates_and_keeps_false_abstention_per_pair():
    rng = np.random.default_rng(0)
    n = len(verification.SIGNAL_NAMES)
    rows = []
    for pair, shift in (("en->es", 0.0), ("es->es", 0.5)):  # one pair scores higher overall
        for setting, centre in (("answerable", 1.0), ("near-domain", -1.0)):
            for half in ("tune", "test"):
                for x in rng.normal(centre + shift, 0.7, size=(200, n)):
                    rows.append({"pair": pair, "half": half, "setting": setting, "signals": x.tolist()})
    calibration = fit_calibration(rows, false_abstention=0.04)
    figures = calibration_figures(rows, calibration)
    assert all(w > 0 for w in calibration.weights)
    # the bias is set by the harder pair: it declines at most 4 % of its answerable tuning questions
    assert figures["en->es tune"]["answerable"] <= 0.04 + 1e-9
    assert figures["es->es tune"]["answerable"] <= 0.04 + 1e-9
    assert figures["en->es test"]["near-domain"] > 0.9
