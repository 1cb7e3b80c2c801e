"""Where a passage comes from, in the words a reader follows: "page 2", "slide 3",
"sheet Sales, rows 4–6", "chapter 2: Rivers".

Readers build a document's text part by part with :class:`TextAssembler`, which records the
:class:`~qa.types.PageSpan` of each part; citations name the spans their quote overlaps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Iterable, Sequence

from .types import PageSpan

_PLURALS = {"page": "pages", "slide": "slides", "sheet": "sheets", "chapter": "chapters"}
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


def describe(spans: Sequence[PageSpan]) -> str | None:
    """The place(s) in words: "page 2", "pages 2–3", "slide 4", "sheet Sales, rows 4–6",
    "rows 4–6" (a CSV file), "chapter 2: Rivers"; None without spans."""
    if not spans:
        return None
    first, last = spans[0], spans[-1]
    if any((s.kind, s.name) != (first.kind, first.name) for s in spans):
        return f"{_one(first)} – {_one(last)}"
    if first.kind == "sheet":
        rows = [s.row for s in spans if s.row is not None]
        where = f"sheet {first.name}, " if first.name else ""
        if not rows:
            return where.rstrip(", ") or f"sheet {first.page}"
        low, high = min(rows), max(rows)
        return f"{where}row {low}" if low == high else f"{where}rows {low}–{high}"
    if first.page == last.page:
        return _one(first)
    return f"{_PLURALS.get(first.kind, first.kind)} {first.page}–{last.page}"


def _one(span: PageSpan) -> str:
    if span.kind == "sheet":
        return describe([span]) or ""
    if span.kind == "chapter" and span.name:
        return f"chapter {span.page}: {span.name}"
    return f"{span.kind} {span.page}"


def summarize(places: Iterable[tuple[str, int, str]]) -> str:
    """How many pages, slides, sheets or chapters a document has ("12 pages", "2 sheets"),
    from its distinct ``(kind, number, name)`` places; empty for none."""
    counts = Counter(kind for kind, _, _ in set(places))
    return ", ".join(f"{n} {kind if n == 1 else _PLURALS.get(kind, kind)}" for kind, n in sorted(counts.items()))
