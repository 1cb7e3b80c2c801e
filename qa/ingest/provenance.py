"""Building a document's text part by part with :class:`TextAssembler`, which records the
:class:`~qa.types.PageSpan` of each part (page, slide, sheet rows, chapter);
citations name the spans their quote overlaps (:mod:`qa.text.places` says them in words).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from ..types import PageSpan

PART_SEPARATOR = "\n\n"


class TextAssembler:
    """Joins the parts of a document with blank lines and records each part's span."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._spans: list[PageSpan] = []
        self._length = 0

    def add(self, text: str, page: int | None = None, *, kind: str = "page", name: str = "",
            row: int | None = None, separator: str = PART_SEPARATOR) -> None:
        """Append ``text`` (skipped if blank); with ``page`` set, record where it came from."""
        spans = [PageSpan(page, 0, len(text), kind, name, row)] if page is not None else []
        self.add_spanned(text, spans, separator=separator)

    def add_spanned(self, text: str, spans: Iterable[PageSpan], *, separator: str = PART_SEPARATOR) -> None:
        """Append text that carries its own spans (relative to ``text``), shifted into place."""
        if not text.strip():
            return
        if self._parts:
            self._parts.append(separator)
            self._length += len(separator)
        self._parts.append(text)
        self._spans.extend(replace(s, start=s.start + self._length, end=s.end + self._length) for s in spans)
        self._length += len(text)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def spans(self) -> tuple[PageSpan, ...]:
        return tuple(self._spans)
