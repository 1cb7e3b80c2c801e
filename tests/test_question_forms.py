"""The kind of answer a question asks for, and whether it refers back, across languages."""

from __future__ import annotations

import pytest

from qa.search.question_forms import AnswerKind, answer_kind, can_hold, read_question


@pytest.mark.parametrize("question, kind", [
    ("Who supplied drones to Russia?", AnswerKind.PERSON),
    ("¿Quién suministró drones a Rusia?", AnswerKind.PERSON),
    ("Wer hat Russland Drohnen geliefert?", AnswerKind.PERSON),
    ("Qui a livré des drones à la Russie ?", AnswerKind.PERSON),
    ("Кто поставлял дроны в Россию?", AnswerKind.PERSON),
    ("谁向俄罗斯提供了无人机？", AnswerKind.PERSON),
    ("When did Shoigu visit North Korea?", AnswerKind.TIME),
    ("¿En qué año visitó Shoigu Corea del Norte?", AnswerKind.TIME),
    ("Wann besuchte Schoigu Nordkorea?", AnswerKind.TIME),
    ("いつ訪問しましたか？", AnswerKind.TIME),
    ("Where will the drones be built?", AnswerKind.PLACE),
    ("¿Dónde se fabricarán?", AnswerKind.PLACE),
    ("Wo werden sie gebaut?", AnswerKind.PLACE),
    ("How many drones will Russia produce?", AnswerKind.NUMBER),
    ("¿Cuántos drones producirá Rusia?", AnswerKind.NUMBER),
    ("Wie viele Drohnen wird Russland bauen?", AnswerKind.NUMBER),
    ("Rusya kaç drone üretecek?", AnswerKind.NUMBER),
    ("What did Kim say?", AnswerKind.OTHER),  # "Kim" is a name, not Turkish "who"
    ("Wie heißt der Sprecher?", AnswerKind.OTHER),  # German "wie" is "how", not Dutch "who"
])
def test_answer_kind(question, kind):
    assert answer_kind(question) == kind


@pytest.mark.parametrize("question", [
    "Where will they be built?", "And when?", "What else did she add?", "¿Y quién más?", "¿Cuándo murió él?",
    "¿Y en julio?", "Und wann hat sie wieder eröffnet?", "Und warum?", "Et où ?", "E dove?", "Когда он умер?",
])
def test_follow_ups_refer_back(question):
    assert read_question(question).refers_back


@pytest.mark.parametrize("question", [
    "Who supplied drones to Russia?", "What is the capital of Australia?", "¿Qué es el oxígeno?",
    "Wann wurde die Stadt gegründet?", "¿Cuántos aviones no tripulados producirá Rusia para 2025?",
    "Il Reno nasce in Svizzera?",
])
def test_self_contained_questions_do_not(question):
    assert not read_question(question).refers_back


def test_own_words_leave_out_cue_words():
    assert read_question("And where will they be built?").own_words == ("will", "be", "built")
    assert read_question("¿Y quién más?").own_words == ()


@pytest.mark.parametrize("kind, sentence, expected", [
    (AnswerKind.NUMBER, "Rusia producirá más de 6.000 aviones.", True),
    (AnswerKind.NUMBER, "Rusia producirá muchos aviones.", False),
    (AnswerKind.TIME, "Ocurrió en el siglo XIX.", True),
    (AnswerKind.TIME, "Ocurrió hace mucho.", False),
    (AnswerKind.PERSON, "Lo dijo la portavoz Adrienne Watson.", True),
    (AnswerKind.PERSON, "Esto es todo lo que se sabe.", False),  # only the sentence's first word is capitalised
    (AnswerKind.PLACE, "«Lo dijo ayer.» Después se fue.", False),
    (AnswerKind.PLACE, "俄罗斯在莫斯科以东建厂。", True),  # a caseless script cannot tell: it may
    (AnswerKind.OTHER, "cualquier cosa", True),
])
def test_can_hold(kind, sentence, expected):
    assert can_hold(kind, sentence) is expected
