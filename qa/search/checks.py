"""What a question and its options must be, checked before anything is searched."""

from __future__ import annotations

import unicodedata

from ..errors import QuestionError

MAX_QUESTION_CHARS = 2000
MAX_K = 1000
RETRIEVAL_MODES = ("hybrid", "dense")


def check_question(question: object) -> str:
    """The question stripped of surrounding whitespace, or QuestionError saying what is wrong."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None)
    if bad is not None:
        raise QuestionError(f"the question contains a control character (U+{ord(bad):04X})")
    return text


def check_k(k: object) -> int:
    """``k`` as an int, or ValueError naming the bad value."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def check_mode(mode: object) -> str:
    """``mode`` if it names a retrieval mode, else ValueError listing them."""
    if mode not in RETRIEVAL_MODES:
        raise ValueError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}")
    return mode
