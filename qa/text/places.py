"""Where a passage comes from, in the words a reader follows: "page 2", "slide 3",
"sheet Sales, rows 4–6", "chapter 2: Rivers" (from a chunk's :class:`~qa.types.PageSpan` list)."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from ..types import PageSpan

_PLURALS = {"page": "pages", "slide": "slides", "sheet": "sheets", "chapter": "chapters"}


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
