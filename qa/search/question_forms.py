"""What a question asks for, and whether it leans on the conversation, from its cue words.

Two small judgements the answerer needs and the encoder cannot give:

- **The kind of answer** a question expects: a person (who), a time (when, what year), a
  place (where) or a number (how many). A quote that cannot hold such an answer (a "how
  many" sentence without a number) is weaker evidence, whatever its cosine.
- **Whether it refers back** to earlier turns: pronouns and demonstratives ("they",
  "ella", "dort"), "else"/"also" words, a leading "and" ("¿y ...?", "und ...?"), or
  nothing but a question word ("When?"). Only such a question may borrow words from the
  conversation; any other one is answered exactly as if asked alone.

The cue words cover the bundled encoder's 16 languages. They are data, checked by
``qa eval --follow-ups`` (the hand-written follow-ups must be detected) and by the
XQuAD-R questions (self-contained, so a cue there costs nothing but is counted): see the
README's quality section. Words are matched after :func:`qa.text.lexical.words`-style
lowercasing; cues of unspaced scripts (Chinese, Japanese, Thai) are matched as substrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import regex


class AnswerKind(str, Enum):
    """The kind of answer a question asks for."""

    PERSON = "person"
    TIME = "time"
    PLACE = "place"
    NUMBER = "number"
    OTHER = "other"


# Phrases (space-separated words, matched as whole words in order) -> kind. Multi-word
# phrases come first so "how many" wins over "how" and "what year" over "what".
_KIND_CUES: dict[AnswerKind, tuple[str, ...]] = {
    AnswerKind.NUMBER: (
        "how many", "how much", "how long", "how old", "what percentage", "what percent",  # en
        "cuántos", "cuántas", "cuánto", "cuánta", "qué porcentaje",  # es
        "wie viele", "wie viel", "wieviel", "wieviele", "wie lange", "wie alt",  # de
        "combien",  # fr
        "quanti", "quante", "quanto", "quanta",  # it
        "quantos", "quantas", "quanto", "quanta",  # pt
        "hoeveel", "hoelang",  # nl
        "ilu",  # pl ("ile" is Turkish "with")
        "сколько",  # ru
        "kaç", "ne kadar",  # tr
        "كم",  # ar
        "多少", "幾", "几", "いくつ", "何人", "何個", "いくら",  # zh, ja
        "몇", "얼마",  # ko
        "กี่", "เท่าไร", "เท่าไหร่",  # th
    ),
    AnswerKind.TIME: (
        "what year", "which year", "what century", "which century", "what date", "what time", "when",  # en
        "qué año", "qué siglo", "qué fecha", "cuándo",  # es
        "welchem jahr", "welches jahr", "welchem jahrhundert", "wann",  # de
        "quelle année", "quel siècle", "quand",  # fr
        "che anno", "quale anno", "quando",  # it
        "que ano", "qual ano", "quando",  # pt
        "welk jaar", "wanneer",  # nl
        "którym roku", "kiedy",  # pl
        "каком году", "когда",  # ru
        "hangi yıl", "hangi yılda", "ne zaman",  # tr
        "متى",  # ar
        "什么时候", "何时", "哪一年", "哪年", "いつ", "何年",  # zh, ja
        "언제",  # ko
        "เมื่อไร", "เมื่อไหร่", "ปีใด", "ปีไหน",  # th
    ),
    AnswerKind.PLACE: (
        "where", "dónde", "adónde", "wo", "wohin", "woher", "où", "dove", "onde", "aonde", "waar",
        "gdzie", "где", "куда", "nerede", "nereye", "nereden", "أين", "哪里", "哪儿", "在哪", "どこ", "어디", "ที่ไหน",
    ),
    AnswerKind.PERSON: (
        "who", "whom", "whose", "quién", "quiénes", "wer", "wem", "wen", "wessen", "qui", "chi", "quem",
        "kto", "kogo", "komu", "кто", "кого", "кому", "кем", "kimin", "kime", "مَن", "谁", "誰",
        "だれ", "누구", "누가", "ใคร",
    ),
}

# Interrogatives that say nothing about the kind of answer ("what", "which", "how", "why"):
# cue words all the same, so that answer verification does not weigh them as content.
_QUESTION_WORDS = frozenset("""
what which how why qué que cuál cuáles cómo por porqué was welche welcher welches welchen wie warum wieso weshalb
quoi quel quelle quels quelles comment pourquoi cosa quale quali come perché qual quais como wat welk welke hoe waarom
co jaki jaka jakie który która które jak dlaczego что какой какая какие как почему ne hangi nasıl neden
ما ماذا أي كيف لماذا 什么 哪个 怎么 为什么 何 どの どう なぜ 무엇 어느 어떻게 왜 อะไร ไหน อย่างไร ทำไม
""".split())

# Words that point back at something said before: personal and possessive pronouns,
# demonstratives, "there"/"then", "else"/"also"/"other". Words that are something else in
# another of the languages are left out: articles that double as pronouns ("la", "die",
# "het", "il", "o"), Spanish "es" (is), English "one", "on", "son", "dies", Italian "da".
_REFERRING = frozenset("""
it its they them their theirs he him his she her hers this that these those there then else also too another other same
él ella ellos ellas ello eso esto ese esa esos esas este esta estos estas aquel aquella allí allá ahí entonces más también
otro otra otros otras mismo misma su sus
er sie ihn ihm ihr ihre ihren ihrem ihrer sein seine seinen seinem seiner diese dieser dieses diesen dort dann sonst
noch auch andere anderen
elle ils elles lui leur leurs sa ses cela ça ceci cet cette ces là alors aussi autre autres
lei loro esso essa questo questa quello quella lì allora anche altro altra altri
ele ela eles elas dele dela deles delas isso isto esse aquele aquela lá então outro outra
hij zij hem haar hun dat dit deze daar toen ook ander
ona ono oni jego jej tego tej tam wtedy też także inny inna
он она оно они его её ее их этот эта это эти тот та там тогда тоже также ещё еще другой другая
o onu onun onlar onları bu şu orada sonra başka
هو هي هم ذلك هذا هذه هناك أيضا
그 그것 그들 그녀 거기 또
""".split())
_REFERRING_UNSPACED = ("它", "他们", "她们", "他", "她", "那里", "那个", "这个", "还有", "それ", "彼", "彼女", "その", "そこ",
                       "มัน", "เขา", "ที่นั่น")
# A first word that continues the previous question: "And when?", "¿Y quién más?", "Und wo?"
_CONTINUING = frozenset("and y e und et и ve و".split())

_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’][\p{L}]+)?")
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]")
# A number: digits in any script, a Roman numeral of two or more letters (siglo XIX), or
# Chinese/Japanese numerals.
_NUMBER = regex.compile(r"\p{Nd}|\b[IVXLC]{2,}\b|[一二三四五六七八九十百千万億亿]")
# A capitalised word (a name, in a cased script) and what may stand before a sentence's
# first word.
_CAPITALISED = regex.compile(r"\p{Lu}[\p{Ll}\p{M}]")
_OPENING = regex.compile(r"(?:^|[.!?。！？][»”\"')\]]*\s+)[¿¡«“\"'(\s]*$")
_CASED = regex.compile(r"[\p{Lu}\p{Ll}]")


@dataclass(frozen=True)
class QuestionForm:
    """What :func:`read_question` found: the answer kind, whether the question refers back,
    and its words other than cue words (the ones it must be supported by on its own)."""

    kind: AnswerKind
    refers_back: bool
    own_words: tuple[str, ...]


def _words(text: str) -> list[str]:
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    spaced = sorted((p for p in phrases if not _UNSPACED.search(p)), key=len, reverse=True)
    unspaced = sorted((p for p in phrases if _UNSPACED.search(p)), key=len, reverse=True)
    parts = [r"(?<![\w])" + re.escape(p) + r"(?![\w])" for p in spaced] + [re.escape(p) for p in unspaced]
    return re.compile("|".join(parts))


_KIND_PATTERNS = [(kind, _phrase_pattern(cues)) for kind, cues in _KIND_CUES.items()]
_CUE_WORDS = (frozenset(w for cues in _KIND_CUES.values() for phrase in cues for w in phrase.split())
              | _REFERRING | _QUESTION_WORDS | _CONTINUING)


def is_cue_word(word: str) -> bool:
    """Whether ``word`` (lowercased) is a question, reference or continuation word of some
    language rather than content."""
    return word in _CUE_WORDS


def answer_kind(question: str) -> AnswerKind:
    """The kind of answer ``question`` asks for (OTHER when its cues say nothing)."""
    text = " ".join(question.lower().split())
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return kind
    return AnswerKind.OTHER


def read_question(question: str) -> QuestionForm:
    """The question's answer kind, whether it refers back, and its own (non-cue) words."""
    words = _words(question)
    own = tuple(w for w in words if w not in _CUE_WORDS)
    refers_back = (
        any(w in _REFERRING for w in words)
        or (bool(words) and words[0] in _CONTINUING)
        or any(cue in question for cue in _REFERRING_UNSPACED)
        or not own  # nothing but cue words: "When?", "¿Y quién?"
    )
    return QuestionForm(answer_kind(question), refers_back, own)


def can_hold(kind: AnswerKind, sentence: str) -> bool:
    """Whether ``sentence`` can hold an answer of ``kind``: a number for NUMBER and TIME, a
    name for PERSON and PLACE (in cased scripts; caseless ones cannot tell, so they can)."""
    if kind in (AnswerKind.NUMBER, AnswerKind.TIME):
        return _NUMBER.search(sentence) is not None
    if kind in (AnswerKind.PERSON, AnswerKind.PLACE):
        return _CASED.search(sentence) is None or any(
            _OPENING.search(sentence[:m.start()]) is None for m in _CAPITALISED.finditer(sentence))
    return True
