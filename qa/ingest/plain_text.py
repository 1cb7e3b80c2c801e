"""Text out of bytes: text files in any common encoding, and the visible text of HTML."""

from __future__ import annotations

import codecs
import re

from ..errors import DocumentError

# A UTF-8 multi-byte sequence. Legacy 8-bit text (cp1252 Spanish, say) almost never holds
# one by accident, so a file that has them but does not decode is broken UTF-8, not legacy.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


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


def html_text(data: bytes) -> str:
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
