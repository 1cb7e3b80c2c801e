"""Adding uploaded files to the documents folder safely.

Whatever name a browser sends (``../../x.txt``, ``C:\\evil.txt``, ``/etc/passwd``), the
file lands directly inside the documents folder under a cleaned name, only for supported
formats and within the size limit, and never over an existing document.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .documents import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES, content_id

MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class UploadResult:
    """What happened to one uploaded file: ``saved`` is the name in the folder, or None."""

    original: str
    saved: str | None
    message: str


def clean_filename(name: str) -> str:
    """A safe file name: the last path component, no control or shell-special characters,
    not hidden, at most MAX_NAME_CHARS long, keeping the extension. Empty if nothing is left."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = re.sub(r"[^\w.\- ()]", "_", base).strip(" .")
    stem, suffix = os.path.splitext(base)
    stem = stem.lstrip(".")[: MAX_NAME_CHARS - len(suffix)]
    return f"{stem}{suffix.lower()}" if stem else ""


def add_uploads(
    docs_dir: str | os.PathLike[str],
    uploads: Iterable[tuple[str, str | os.PathLike[str]]],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> list[UploadResult]:
    """Copy uploaded files into ``docs_dir``.

    ``uploads`` pairs each file's name as sent by the client with the temporary path the
    server stored it at. A name already taken by different content gets a numbered name
    (``report (2).pdf``); identical content already present is not copied again.
    """
    folder = Path(docs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return [_add_one(folder, original, Path(temp_path), max_file_bytes) for original, temp_path in uploads]


def _add_one(folder: Path, original: str, temp_path: Path, max_file_bytes: int) -> UploadResult:
    name = clean_filename(original)
    suffix = Path(name).suffix
    if not name:
        return UploadResult(original, None, f"refused {original!r}: no usable file name")
    if suffix not in SUPPORTED_SUFFIXES:
        return UploadResult(original, None, f"refused {original!r}: unsupported file type "
                                            f"'{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    size = temp_path.stat().st_size
    if size == 0:
        return UploadResult(original, None, f"refused {original!r}: empty file")
    if size > max_file_bytes:
        return UploadResult(original, None, f"refused {original!r}: {size:,} bytes is over the {max_file_bytes:,} limit")
    digest = content_id(temp_path.read_bytes())
    target = folder / name
    number = 2
    while target.exists():
        if target.is_file() and content_id(target.read_bytes()) == digest:
            return UploadResult(original, target.name, f"{target.name} is already in the documents folder")
        target = folder / f"{Path(name).stem} ({number}){suffix}"
        number += 1
    # O_EXCL: never replace a file that appeared since the check (another upload, say)
    with open(target, "xb") as out, open(temp_path, "rb") as src:
        shutil.copyfileobj(src, out)
    renamed = f" (a different {name} exists)" if target.name != name else ""
    return UploadResult(original, target.name, f"saved {target.name}{renamed}")
