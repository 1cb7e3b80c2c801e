"""Reading scanned pages with Tesseract: PDF pages without a text layer, and images.

Tesseract is optional: without the ``tesseract`` program, scanned pages cannot be read and
their files are skipped with a reason that says how to install it. Pages are recognised in
parallel (one Tesseract process per usable core, each single-threaded, so the processes do
not fight over the cores), with a progress bar, and each page's text is cached under
``$XDG_CACHE_HOME/qa/ocr`` by the file's content hash, the page number and the languages, so
a rebuild never recognises a page again.

The languages come from ``--ocr-languages`` (Tesseract's ``spa+eng`` form) or, by default,
from the document itself: its first page is read with every installed language pack of the
encoder's languages, the language of that text is detected, and all pages are then read with
that language's pack (plus English when installed, for the English words most documents hold).
Reading with many packs at once is slower and mistakes accents ("recibió" -> "recibié").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Iterator, Sequence

from ..machine import cache_dir, usable_cores
from ..errors import DocumentError

# Tesseract's names for the bundled encoder's 16 languages, by ISO 639-1 code.
ENCODER_LANGUAGES = {
    "ar": "ara", "zh": "chi_sim", "nl": "nld", "en": "eng", "fr": "fra", "de": "deu", "it": "ita",
    "ja": "jpn", "ko": "kor", "pl": "pol", "pt": "por", "ru": "rus", "es": "spa", "th": "tha",
    "tr": "tur",
}
ENCODER_LANGUAGES_EXTRA = ("chi_tra",)  # Chinese (traditional) shares the "zh" code
RENDER_DPI = 300  # Tesseract's models are trained on text scanned at about 300 dpi
INSTALL_HINT = ("install Tesseract to read scanned pages (Debian/Ubuntu: apt-get install tesseract-ocr "
                "tesseract-ocr-eng tesseract-ocr-spa; see README, 'Scanned documents')")


@dataclass(frozen=True)
class OcrSettings:
    """How scanned pages are read: ``languages`` in Tesseract's form (``spa+eng``), or None
    to detect each document's language; ``progress`` shows a bar per document."""

    languages: str | None = None
    progress: bool = False


def available() -> bool:
    """Whether the ``tesseract`` program is installed."""
    return shutil.which("tesseract") is not None


@lru_cache(maxsize=1)
def installed_languages() -> tuple[str, ...]:
    """Tesseract's installed language packs (``osd``, the script detector, left out)."""
    listing = _run_tesseract(["--list-langs"], b"").decode("utf-8", "replace").splitlines()
    return tuple(sorted(line.strip() for line in listing[1:] if line.strip() and line.strip() != "osd"))


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    return _run_tesseract(["--version"], b"").decode("utf-8", "replace").splitlines()[0].strip()


def check_languages(languages: str) -> str:
    """``languages`` if every pack it names is installed, else a ValueError naming the missing ones."""
    wanted = [code for code in languages.split("+") if code]
    missing = [code for code in wanted if code not in installed_languages()]
    if not wanted or missing:
        raise ValueError(f"OCR language pack(s) {'+'.join(missing) or repr(languages)} not installed "
                         f"(installed: {'+'.join(installed_languages()) or 'none'}; Debian: apt-get install "
                         f"tesseract-ocr-{(missing or ['spa'])[0].replace('_', '-')})")
    return "+".join(wanted)


def detection_languages() -> str:
    """Every installed pack of the encoder's languages: the first reading of a document."""
    ours = set(ENCODER_LANGUAGES.values()) | set(ENCODER_LANGUAGES_EXTRA)
    packs = [code for code in installed_languages() if code in ours] or list(installed_languages())
    if not packs:
        raise DocumentError("Tesseract has no language pack installed (Debian: apt-get install tesseract-ocr-eng)")
    return "+".join(packs)


def recognise_pages(content_id: str, pages: Sequence[int], render: Callable[[int], bytes], settings: OcrSettings,
                    description: str) -> list[str]:
    """The text of the given pages (0-based) of a file, read by Tesseract, in that order.

    ``render(i)`` gives page ``i`` as image bytes Tesseract reads (PNG, PNM, TIFF). It runs
    in this thread (PDF renderers are not thread-safe) and only for pages not in the cache.
    ``content_id`` (the file's SHA-256) keys the cache.
    """
    if not available():
        raise DocumentError(f"scanned pages without text: {INSTALL_HINT}")
    if not pages:
        return []
    languages = settings.languages or _detected_languages(content_id, pages[0], render)
    from tqdm.auto import tqdm

    texts: list[str] = []
    with tqdm(total=len(pages), unit="page", desc=f"OCR {description}", disable=not settings.progress) as bar:
        for text in _bounded_map(_recognise_cached(content_id, i, render, languages) for i in pages):
            texts.append(text)
            bar.update(1)
    return texts


def _detected_languages(content_id: str, page: int, render: Callable[[int], bytes]) -> str:
    from ..text.language import detect_language

    first_page = _recognise_cached(content_id, page, render, detection_languages())()
    pack = ENCODER_LANGUAGES.get(detect_language(first_page)) if first_page.strip() else None
    if pack is None or pack not in installed_languages():
        return detection_languages()
    return pack if pack == "eng" or "eng" not in installed_languages() else f"{pack}+eng"


def _recognise_cached(content_id: str, page: int, render: Callable[[int], bytes], languages: str) -> Callable[[], str]:
    """A job that returns the page's text: from the cache, or rendered now and read later."""
    key = hashlib.sha256(f"{content_id}:{page}:{languages}:{RENDER_DPI}:{tesseract_version()}".encode()).hexdigest()
    path = cache_dir() / "ocr" / f"{key}.txt"
    try:
        cached = path.read_text(encoding="utf-8")
        return lambda: cached
    except OSError:
        pass
    image = render(page)

    def job() -> str:
        text = _run_tesseract(["stdin", "stdout", "-l", languages], image).decode("utf-8", "replace")
        text = text.replace("\f", "").strip()
        try:  # written under a private name and renamed: a reader never sees half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            pending = path.with_name(f".{key}.{os.getpid()}.{id(image)}")
            pending.write_text(text, encoding="utf-8")
            os.replace(pending, path)
        except OSError:
            pass  # an unwritable cache costs time on the next build, nothing else
        return text

    return job


def _bounded_map(jobs: Iterable[Callable[[], str]]) -> Iterator[str]:
    """Run the jobs on the usable cores, results in order.

    ``jobs`` is consumed (pages rendered) only a few ahead of the results, so a long scan
    never holds all its page images in memory at once.
    """
    workers = usable_cores()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-ocr") as pool:
        pending: deque[Future[str]] = deque()
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _run_tesseract(arguments: list[str], stdin: bytes) -> bytes:
    # one thread per process: the pages run in parallel instead (OpenMP threads of several
    # processes on the same cores slow each other down)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(["tesseract", *arguments], input=stdin, capture_output=True, env=env, check=False)
    except OSError as exc:
        raise DocumentError(f"cannot run tesseract ({exc}); {INSTALL_HINT}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DocumentError(f"tesseract failed: {message[-1] if message else f'exit code {done.returncode}'}")
    return done.stdout
