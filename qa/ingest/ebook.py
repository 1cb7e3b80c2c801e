"""EPUB e-books: the text of each chapter (each document of the reading order), titled from
the book's table of contents."""

from __future__ import annotations

import io
import zipfile

from ..errors import DocumentError
from .plain_text import html_text
from .provenance import TextAssembler
from ..types import PageSpan


def epub_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """The chapters in reading order; each chapter is a span named by its title."""
    from ebooklib import ITEM_DOCUMENT, epub


    _refuse_drm(data)
    book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": False})
    titles = {href.split("#")[0]: title for href, title in _toc_entries(book.toc)}
    text = TextAssembler()
    number = 0
    for item_id, _linear in book.spine:
        item = book.get_item_with_id(item_id)
        # the navigation document is the table of contents, not a chapter
        if item is None or item.get_type() != ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        chapter = html_text(item.get_content())
        if chapter.strip():
            number += 1
            text.add(chapter, number, kind="chapter", name=titles.get(item.get_name(), ""))
    return text.text, text.spans


def _toc_entries(toc) -> list[tuple[str, str]]:
    """(href, title) of every entry of a table of contents, nested sections included."""
    from ebooklib import epub

    entries: list[tuple[str, str]] = []
    for entry in toc:
        if isinstance(entry, tuple):  # (Section, [children])
            section, children = entry
            if getattr(section, "href", None):
                entries.append((section.href, section.title))
            entries.extend(_toc_entries(children))
        elif isinstance(entry, (epub.Link, epub.EpubHtml)):
            entries.append((entry.href if isinstance(entry, epub.Link) else entry.get_name(), entry.title))
    return entries


def _refuse_drm(data: bytes) -> None:
    """A DRM-protected book lists its encrypted chapters in META-INF/encryption.xml (fonts
    obfuscated by the publisher are listed there too, and are no obstacle)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "META-INF/encryption.xml" not in archive.namelist():
            return
        listing = archive.read("META-INF/encryption.xml").lower()
    if any(marker in listing for marker in (b".xhtml", b".html", b".htm\"")):
        raise DocumentError("encrypted (DRM-protected) EPUB")
