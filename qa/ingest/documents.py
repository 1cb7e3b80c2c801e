"""Finding the files of a documents folder and reading each format into text.

Text files are decoded without any newline or Unicode normalisation, so a chunk's offsets
index the file's own characters: ``read_text(path)[start:end] == chunk.text``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import DocumentError, first_line
from .limits import DEFAULT_MAX_FILE_BYTES
from .ocr import INSTALL_HINT, RENDER_DPI, OcrSettings, available, recognise_pages
from .plain_text import decode_text, html_text
from .provenance import TextAssembler
from ..types import Document, PageSpan, SkippedFile

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + (
    ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".odt", ".odp", ".epub", ".eml", ".msg", ".rtf") + IMAGE_SUFFIXES
# Office Open XML files (docx, pptx, xlsx) are zip archives, unless a password encrypts
# them: then they are OLE compound files, which begin with this signature.
_OLE_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")



@dataclass(frozen=True)
class SourceFile:
    """A candidate file found in the documents folder; ``stamp`` is its :func:`file_stamp`
    when it was found, empty if it was written too recently to be trusted."""

    path: Path
    source: str
    size: int
    stamp: str = ""

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


# A file written less than this long before it is looked at may be written again within the
# same clock tick without its times changing (git's "racily clean" files): no stamp then.
_SETTLED_SECONDS = 2


def file_stamp(status: os.stat_result, looked_at: float) -> str:
    """What a write to a file changes, as git's index records it: size, modification and
    change times (the change time cannot be set back, as a restored modification time can)
    and the inode (a file replaced by another); an equal stamp means the same content. Empty
    for a file written within _SETTLED_SECONDS of ``looked_at`` (seconds since the epoch,
    taken before ``status``)."""
    if max(status.st_mtime_ns, status.st_ctime_ns) / 1e9 > looked_at - _SETTLED_SECONDS:
        return ""
    return f"{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}:{status.st_ino}"


def content_id(data: bytes) -> str:
    """The document id: SHA-256 of the file's bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def scan(
    docs_dir: str | os.PathLike[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[list[SourceFile], list[SkippedFile]]:
    """List the indexable files under ``docs_dir`` (recursively, sorted) and the skipped ones.

    Hidden files and folders (names starting with ``.``) are ignored silently; every other
    file that cannot be indexed is returned as a :class:`SkippedFile` with its reason.
    """
    root = Path(docs_dir)
    if not root.is_dir():
        raise DocumentError(f"documents folder not found: {root}")
    found: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    _scan_folder(str(root), "", root.resolve(), max_file_bytes, found, skipped)
    return found, skipped


@dataclass(frozen=True)
class PathScan:
    """What :func:`scan_paths` found under the named paths, and the names they cover: an
    indexed document whose file is covered but not found is gone."""

    files: list[SourceFile]
    skipped: list[SkippedFile]
    covered_files: frozenset[str]  # sources named as files (or gone)
    covered_folders: tuple[str, ...]  # source prefixes ("reports/") of the folders named (or gone)


def scan_paths(
    docs_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> PathScan:
    """:func:`scan` for some files and folders of ``docs_dir`` only (paths as usual: absolute,
    or relative to the current directory), so that an update of a few files does not list and
    stat a large folder. A path that does not exist covers the indexed documents it named
    (they are gone); a path outside ``docs_dir`` raises DocumentError naming it."""
    root = Path(docs_dir)
    if not root.is_dir():
        raise DocumentError(f"documents folder not found: {root}")
    real_root = root.resolve()
    found: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    files: set[str] = set()
    folders: list[str] = []
    for path in paths:
        source = _source_name(Path(path), real_root)
        if source == "":  # the whole folder
            return PathScan(*scan(root, max_file_bytes=max_file_bytes), frozenset(), ("",))
        where = real_root / source
        if any(part.startswith(".") for part in Path(source).parts):
            skipped.append(SkippedFile(source, "hidden files and folders are not indexed"))
        elif where.is_dir() and not where.is_symlink():
            folders.append(source + "/")
            _scan_folder(str(where), source + "/", real_root, max_file_bytes, found, skipped)
        else:
            files.add(source)
            folders.append(source + "/")  # a folder of that name that is gone
            if os.path.lexists(where):
                _scan_folder(str(where.parent), _parent_prefix(source), real_root, max_file_bytes, found, skipped,
                             only_name=where.name)
    unique = {file.source: file for file in found}
    return PathScan(sorted(unique.values(), key=lambda f: f.source), skipped, frozenset(files), tuple(folders))


def _source_name(path: Path, real_root: Path) -> str:
    """The name of ``path`` in the documents folder ("" for the folder itself); its last part
    is not resolved (a symlink is named, not followed), and the rest must lie in the folder."""
    absolute = Path(os.path.abspath(path))
    if absolute.resolve() == real_root:
        return ""
    full = absolute.parent.resolve() / absolute.name
    if not full.is_relative_to(real_root):
        raise DocumentError(f"{path} is not inside the documents folder {real_root}")
    return full.relative_to(real_root).as_posix()


def _parent_prefix(source: str) -> str:
    slash = source.rfind("/")
    return source[:slash + 1]


def _scan_folder(folder: str, prefix: str, real_root: Path, max_file_bytes: int,
                 found: list[SourceFile], skipped: list[SkippedFile], only_name: str | None = None) -> None:
    """``folder``'s files (sorted by name), then its sub-folders', as ``os.walk`` visits them:
    a folder that is a symlink is not followed, one that cannot be listed is passed over.
    One ``os.scandir`` entry a file, whose type needs no system call: a large folder is
    scanned on every update (``os.walk`` and a ``Path`` a file took 1.5x as long).
    ``only_name``: that file of the folder alone (its listing costs no ``stat``)."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted((e for e in listing if not e.name.startswith(".")
                              and (only_name is None or e.name == only_name)), key=lambda e: e.name)
    except OSError:
        return
    folders = []
    for entry in entries:
        try:
            is_folder = entry.is_dir()
        except OSError:
            is_folder = False
        if is_folder:
            folders.append(entry)
            continue
        looked_at = time.time()
        status, reason = _status_or_reason(entry, real_root, max_file_bytes)
        if status is None:
            skipped.append(SkippedFile(prefix + entry.name, reason))
        else:
            found.append(SourceFile(Path(entry.path), prefix + entry.name, status.st_size, file_stamp(status, looked_at)))
    for entry in folders:
        if not entry.is_symlink():
            _scan_folder(entry.path, f"{prefix}{entry.name}/", real_root, max_file_bytes, found, skipped)


def _status_or_reason(entry: os.DirEntry, real_root: Path, max_file_bytes: int) -> tuple[os.stat_result | None, str]:
    """The file's status if it is to be read, else why not; one ``stat`` (two for a symlink)."""
    if entry.is_symlink():
        target = Path(entry.path).resolve()
        if not target.is_relative_to(real_root):
            return None, "symlink leads outside the documents folder"
        if not target.exists():
            return None, "broken symlink"
    try:
        status = entry.stat()
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    regular = stat.S_ISREG(status.st_mode)
    if suffix_of(entry.name).lower() in SUPPORTED_SUFFIXES and not regular:
        return None, "not a regular file"
    reason = reason_not_to_read(entry.name, status.st_size if regular else 0, max_file_bytes)
    return (status, "") if reason is None else (None, reason)


def suffix_of(name: str) -> str:
    """``PurePath(name).suffix`` of a file name, without building a path (scanning calls it
    for every file of the folder)."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def reason_not_to_read(name: str, size: int, max_file_bytes: int) -> str | None:
    """Why a file of this name and size is not read (unsupported type, empty, too large), or
    None: the checks a file of the folder and a mail's attachment share."""
    suffix = suffix_of(name)
    if suffix.lower() not in SUPPORTED_SUFFIXES:
        return f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
    if size == 0:
        return "empty file"
    if size > max_file_bytes:
        return f"file too large ({size:,} bytes; limit {max_file_bytes:,})"
    return None


def read_bytes(file: SourceFile) -> bytes:
    """The file's bytes; an unreadable file raises DocumentError with the reason."""
    try:
        return file.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}") from exc


def parse(data: bytes, source: str, ocr: OcrSettings | None = None) -> Document:
    """Turn a file's bytes into a Document, choosing the reader by the name's extension.

    ``ocr`` says how scanned pages (PDF pages without text, images) are read; by default
    with Tesseract if it is installed, in the language each document is detected to be in.
    """
    from . import ebook
    from . import mail
    from . import office

    suffix = Path(source).suffix.lower()
    doc_id = content_id(data)
    ocr = ocr or OcrSettings()
    if suffix in (".docx", ".pptx", ".xlsx") and data.startswith(_OLE_SIGNATURE):
        raise DocumentError("password-protected (encrypted) Office file")
    if suffix in TEXT_SUFFIXES:
        text, pages = decode_text(data), ()
    elif suffix in HTML_SUFFIXES:
        text, pages = html_text(data), ()
    elif suffix == ".pdf":
        text, pages = _pdf_text(data, doc_id, source, ocr)
    elif suffix == ".docx":
        text, pages = _docx_text(data), ()
    elif suffix in IMAGE_SUFFIXES:
        text, pages = _reading("image", _image_text, data, doc_id, source, ocr)
    elif suffix in office.READERS:
        text, pages = _reading(suffix[1:].upper(), office.READERS[suffix], data)
    elif suffix == ".epub":
        text, pages = _reading("EPUB", ebook.epub_text, data)
    elif suffix in mail.READERS:
        text, pages = _reading(suffix[1:].upper(), mail.READERS[suffix], data).text, ()  # attachments: qa.ingest.attachments
    else:
        raise DocumentError(f"unsupported file type '{suffix}'")
    if not text.strip():
        raise DocumentError("no text found in the file")
    return Document(id=doc_id, source=source, text=text, pages=pages)


def _reading(kind: str, reader, *arguments):
    """``reader(*arguments)``, with any library error turned into a one-line reason.

    The format libraries raise whatever their parsers meet in a damaged file (zipfile,
    lxml, struct, KeyError...), so every error but our own is reported the same way.
    """
    try:
        return reader(*arguments)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - see above: any parser error means a bad file
        raise DocumentError(f"not a valid {kind} file ({type(exc).__name__}: {first_line(exc, 'no detail')[:200]})") from exc


def read_text(path: str | os.PathLike[str]) -> str:
    """The decoded text of a ``.txt``/``.md`` file, exactly as chunk offsets index it."""
    return decode_text(Path(path).read_bytes())


def _pdf_text(data: bytes, doc_id: str, source: str, ocr: OcrSettings) -> tuple[str, tuple[PageSpan, ...]]:
    """Text of each page, pages separated by a blank line, with the span of each page.

    Pages without a text layer (scans) are read by OCR when Tesseract is installed.
    """
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf logs every repaired defect; the skip reason is what the user needs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("encrypted PDF (needs a password)")
        page_texts = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, NotImplementedError, OSError) as exc:
        raise DocumentError(f"malformed PDF ({type(exc).__name__}: {first_line(exc, 'no detail')[:200]})") from exc
    scanned = [i for i, page_text in enumerate(page_texts) if not page_text.strip()]
    if scanned and _ocr_possible(len(scanned) == len(page_texts), "PDF has no text layer (scanned pages?)"):
        for i, page_text in zip(scanned, _reading("PDF", _pdf_ocr, data, doc_id, scanned, source, ocr)):
            page_texts[i] = page_text
    text = TextAssembler()
    for number, page_text in enumerate(page_texts, start=1):
        text.add(page_text, number)
    return text.text, text.spans


def _ocr_possible(nothing_else: bool, what: str) -> bool:
    """Whether OCR can run; when it cannot and the file has nothing else to read, the reason."""
    if not available() and nothing_else:
        raise DocumentError(f"{what}: {INSTALL_HINT}")
    return available()


def _pdf_ocr(data: bytes, doc_id: str, pages: list[int], source: str, ocr: OcrSettings) -> list[str]:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return recognise_pages(doc_id, pages, lambda i: _pnm(document[i].render(scale=_OCR_SCALE, grayscale=True).to_pil()),
                               ocr, source)
    finally:
        document.close()


def _image_text(data: bytes, doc_id: str, source: str, ocr: OcrSettings) -> tuple[str, tuple[PageSpan, ...]]:
    """The text OCR reads in each frame of an image (a TIFF may hold several pages)."""
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as image:
        frames = [_pnm(frame) for frame in ImageSequence.Iterator(image)]  # also checks the whole file decodes
    _ocr_possible(True, "an image needs OCR")
    text = TextAssembler()
    for number, page_text in enumerate(recognise_pages(doc_id, list(range(len(frames))), frames.__getitem__, ocr, source),
                                       start=1):
        text.add(page_text, number)
    return text.text, text.spans


def _pnm(image) -> bytes:
    """An image as grayscale PNM bytes: what Tesseract reads fastest from its input."""
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="PPM")
    return buffer.getvalue()


_OCR_SCALE = RENDER_DPI / 72  # PDF sizes are in points, 72 an inch


def _docx_text(data: bytes) -> str:
    """Paragraphs and table rows of a Word document, in document order."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile, lxml and KeyError alike
        raise DocumentError(f"not a valid DOCX file ({type(exc).__name__}: {first_line(exc, 'no detail')[:200]})") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
        else:
            lines.append(block.text)
    return "\n".join(lines).strip()
