"""Finding the files of a documents folder and reading each format into text.

Text files are decoded without any newline or Unicode normalisation, so a chunk's offsets
index the file's own characters: ``read_text(path)[start:end] == chunk.text``.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DocumentError
from .types import Document, PageSpan, SkippedFile

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + (".pdf", ".docx")
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024

# A UTF-8 multi-byte sequence. Legacy 8-bit text (cp1252 Spanish, say) almost never holds
# one by accident, so a file that has them but does not decode is broken UTF-8, not legacy.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


@dataclass(frozen=True)
class SourceFile:
    """A candidate file found in the documents folder."""

    path: Path
    source: str
    size: int

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


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
    real_root = root.resolve()
    found: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            source = path.relative_to(root).as_posix()
            reason = _reason_to_skip(path, real_root, max_file_bytes)
            if reason:
                skipped.append(SkippedFile(source, reason))
            else:
                found.append(SourceFile(path, source, path.stat().st_size))
    return found, skipped


def _reason_to_skip(path: Path, real_root: Path, max_file_bytes: int) -> str | None:
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(real_root):
            return "symlink leads outside the documents folder"
        if not target.exists():
            return "broken symlink"
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return f"unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
    if not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
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


def parse(data: bytes, source: str) -> Document:
    """Turn a file's bytes into a Document, choosing the reader by the name's extension."""
    suffix = Path(source).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text, pages = decode_text(data), ()
    elif suffix in HTML_SUFFIXES:
        text, pages = _html_text(data), ()
    elif suffix == ".pdf":
        text, pages = _pdf_text(data)
    elif suffix == ".docx":
        text, pages = _docx_text(data), ()
    else:
        raise DocumentError(f"unsupported file type '{suffix}'")
    if not text.strip():
        raise DocumentError("no text found in the file")
    return Document(id=content_id(data), source=source, text=text, pages=pages)


def read_text(path: str | os.PathLike[str]) -> str:
    """The decoded text of a ``.txt``/``.md`` file, exactly as chunk offsets index it."""
    return decode_text(Path(path).read_bytes())


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8 (BOM or not), UTF-16 with BOM, else a legacy 8-bit encoding.

    Newlines and Unicode forms are kept as they are, so offsets index the file's characters.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _strict_utf8(data[len(codecs.BOM_UTF8):])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"invalid UTF-16 text at byte {exc.start}") from exc
    if b"\x00" in data or len(_CONTROL_BYTES.findall(data[:65536])) > len(data[:65536]) // 20:
        raise DocumentError("binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if _UTF8_MULTIBYTE.search(data):
            return _strict_utf8(data)  # raises with the position of the bad byte
    return _decode_legacy(data)


def _strict_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc


def _decode_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise DocumentError("text in an unknown encoding (not UTF-8 or a legacy 8-bit code page)")
    best = matches[0]
    # charset-normalizer often ties cp1250 with cp1252 on Western text and lists cp1250
    # first, which turns 'ñ' into 'ń'; on a tie prefer cp1252, the legacy Western default.
    tied = {m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    encoding = "cp1252" if "cp1252" in tied else best.encoding
    return data.decode(encoding)


_HTML_BLOCKS = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tr", "title", "ul",
)


def _html_text(data: bytes) -> str:
    """Visible text of an HTML page: one line per block element, scripts and styles dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for element in soup(["script", "style", "noscript", "template", "svg"]):
        element.decompose()
    for cell in soup(["td", "th"]):
        cell.append(" ")
    for block in soup(_HTML_BLOCKS):
        block.insert_before("\n\n")
        block.append("\n\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _pdf_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """Text of each page, pages separated by a blank line, with the span of each page."""
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
        raise DocumentError(f"malformed PDF ({type(exc).__name__}: {_first_line(exc)})") from exc
    parts: list[str] = []
    spans: list[PageSpan] = []
    offset = 0
    for number, page_text in enumerate(page_texts, start=1):
        if not page_text.strip():
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        parts.append(page_text)
        spans.append(PageSpan(number, offset, offset + len(page_text)))
        offset += len(page_text)
    if not spans:
        raise DocumentError("PDF has no extractable text (scanned images? run OCR first)")
    return "".join(parts), tuple(spans)


def _docx_text(data: bytes) -> str:
    """Paragraphs and table rows of a Word document, in document order."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile, lxml and KeyError alike
        raise DocumentError(f"not a valid DOCX file ({type(exc).__name__}: {_first_line(exc)})") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
        else:
            lines.append(block.text)
    return "\n".join(lines).strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no detail"
