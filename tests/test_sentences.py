"""Sentence spans: exact offsets, abbreviations kept whole, several scripts."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from qa.text.sentences import split_clauses, split_sentences

from conftest import SEED_ARTICLE


def sentences(text):
    return [text[a:b] for a, b in split_sentences(text)]


def test_simple_sentences_and_newlines():
    text = "Rusia recibió drones. ¿De quién? De Irán!\nNueva línea sin punto\n\n  Otra."
    assert sentences(text) == ["Rusia recibió drones.", "¿De quién?", "De Irán!", "Nueva línea sin punto", "Otra."]


@pytest.mark.parametrize("text", [
    "Dr. Watson met J. Kirby in the U.S. capital.",
    "It weighs approx. 4 kilograms.",
    "The ship (cf. the report) sailed on.",
])
def test_abbreviations_do_not_end_a_sentence(text):
    assert sentences(text) == [text]


def test_an_ordinal_before_a_month_or_a_century_does_not_end_a_sentence():
    text = "1. Dünya Savaşı bitti. Die Bahn fährt seit dem 1. März 1901. Im 19. Jahrhundert war das neu."
    assert sentences(text) == ["1. Dünya Savaşı bitti.", "Die Bahn fährt seit dem 1. März 1901.",
                               "Im 19. Jahrhundert war das neu."]
    # elsewhere a small number does end a sentence, as in English and Spanish prose
    assert sentences("Lideraron con 24. Pro Bowl los eligió. Er kam 1999. Dann ging er.") == [
        "Lideraron con 24.", "Pro Bowl los eligió.", "Er kam 1999.", "Dann ging er."]


def test_closing_quotes_stay_with_their_sentence():
    text = "“Instamos a la RPDC a cesar sus negociaciones”, añadió. “Tenemos información.” Watson habló."
    assert sentences(text) == ["“Instamos a la RPDC a cesar sus negociaciones”, añadió.",
                               "“Tenemos información.”", "Watson habló."]


def test_cjk_and_devanagari():
    assert sentences("俄罗斯收到了伊朗的无人机。朝鲜也出售了弹药。") == ["俄罗斯收到了伊朗的无人机。", "朝鲜也出售了弹药。"]
    assert sentences("रूस को ड्रोन मिले। यह सच है।") == ["रूस को ड्रोन मिले।", "यह सच है।"]


def test_the_seed_article_sentence_with_drones_is_whole():
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    assert "Ya se sabe que Rusia ha recibido drones de Irán para utilizarlos en su guerra contra Ucrania." in sentences(text)


@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\"”Ü日。")), max_size=300))
def test_spans_are_ordered_trimmed_and_exact(text):
    previous_end = 0
    for start, end in split_sentences(text):
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        previous_end = end


def test_clauses_are_cut_at_commas_colons_and_brackets_and_short_ones_dropped():
    sentence = "Tras la masacre de Peterloo de 1819, el poeta Percy Shelley escribió La máscara de la anarquía (en 1819)."
    assert split_clauses(sentence) == ["Tras la masacre de Peterloo de 1819",
                                       "el poeta Percy Shelley escribió La máscara de la anarquía"]
    assert split_clauses("El asunto, sin embargo; quedó claro para todos: Irán envió drones a Rusia.") == [
        "quedó claro para todos", "Irán envió drones a Rusia."]


def test_a_comma_between_digits_is_part_of_a_number():
    assert split_clauses("Según el informe, Rusia producirá más de 6,000 drones con 3,5 millones de dólares.") == [
        "Según el informe", "Rusia producirá más de 6,000 drones con 3,5 millones de dólares."]


def test_a_sentence_of_fewer_than_two_clauses_has_none():
    assert split_clauses("Rusia recibió drones de Irán.") == []
    assert split_clauses("(Rusia recibió drones de Irán)") == []  # one clause: the sentence itself
    assert split_clauses("En junio, Rusia recibió drones de Irán.") == []  # "En junio" is too short
    assert split_clauses("  ¿Quién, en 2023?") == []


@pytest.mark.parametrize("sentence, clauses", [
    ("俄罗斯从伊朗获得了无人机，并用于乌克兰战争。", ["俄罗斯从伊朗获得了无人机", "并用于乌克兰战争。"]),
    ("ロシアはイランから無人機を受け取り、ウクライナで使った。", ["ロシアはイランから無人機を受け取り", "ウクライナで使った。"]),
    ("حصلت روسيا على طائرات مسيرة من إيران، واستخدمتها في الحرب ضد أوكرانيا.",
     ["حصلت روسيا على طائرات مسيرة من إيران", "واستخدمتها في الحرب ضد أوكرانيا."]),
])
def test_full_width_ideographic_and_arabic_commas_cut_clauses(sentence, clauses):
    assert split_clauses(sentence) == clauses
