"""The records that cross module boundaries: the only shapes one stage hands to the next."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PageSpan:
    """Characters ``[start, end)`` of a document's text come from page ``page`` (1-based)."""

    page: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A loaded file.

    ``id`` is the SHA-256 of the file's bytes, so the same content under two names is one
    document. ``source`` is the path relative to the documents folder, with ``/`` separators.
    ``text`` is the decoded text (for ``.txt``/``.md`` exactly the file's characters; for
    other formats the extracted text). ``pages`` is empty for formats without pages.
    """

    id: str
    source: str
    text: str
    pages: tuple[PageSpan, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """The page holding character ``offset``, or None for documents without pages."""
        if not self.pages:
            return None
        starts = [span.start for span in self.pages]
        i = max(bisect.bisect_right(starts, offset) - 1, 0)
        return self.pages[i].page


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``."""

    id: str
    doc_id: str
    source: str
    start: int
    end: int
    page: int | None
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its score; ``source``/``start``/``end`` locate it exactly."""

    chunk_id: str
    doc_id: str
    source: str
    start: int
    end: int
    page: int | None
    text: str
    score: float


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the index, and why (one line)."""

    source: str
    reason: str


@dataclass(frozen=True)
class FileChange:
    """What a build did to one file: ``added``, ``changed`` or ``removed``."""

    source: str
    status: str
    chunks: int = 0


@dataclass
class BuildReport:
    """The outcome of :func:`qa.build_index`.

    ``added``/``changed``/``removed``/``unchanged`` count files; ``chunks_embedded`` counts
    the passages that went through the encoder in this run (0 on an unchanged folder).
    """

    index_dir: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    changes: list[FileChange] = field(default_factory=list)
    words_searched: int = 0  # words whose translations this build searched (qa.neighbour_build)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``qa index --json`` prints)."""
        return asdict(self)


@dataclass(frozen=True)
class IndexedDocument:
    """One file as the index knows it."""

    source: str
    doc_id: str
    chunks: int
    bytes: int
    indexed_at: str


@dataclass(frozen=True)
class IndexStats:
    """Figures about a loaded index, for ``qa info`` and the app."""

    index_dir: str
    documents: int
    chunks: int
    embedder: str
    dimension: int
    vector_index: str
    size_bytes: int
    built_at: str
    docs_dir: str  # the folder the index was last built from


@dataclass(frozen=True)
class Evidence:
    """A sentence that may answer the question, located in its document and passage.

    ``score`` is the support for the question on the scale the abstention threshold uses.
    """

    hit: Hit
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Citation:
    """A numbered quote: ``quote`` is the document text at ``[start:end]`` (PDF: extracted text).

    ``passage`` is the retrieved chunk the quote lies in (``passage_start`` is its offset in
    the document), so a reader can check the quote in context without opening the file.
    """

    n: int
    source: str
    page: int | None
    start: int
    end: int
    quote: str
    score: float
    passage: str
    passage_start: int
    chunk_id: str


@dataclass(frozen=True)
class Answer:
    """An answer whose ``[n]`` markers refer to ``citations[n-1]``.

    When ``abstained`` is true the documents do not support an answer and ``citations``
    are the closest matches. ``notice`` tells the reader about a fallback (an unreachable
    LLM, say). ``complete`` is false for the partial answers a stream yields before the end.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    language: str
    answerer: str
    notice: str | None = None
    removed_citations: int = 0
    removed_links: int = 0
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``qa ask --json`` prints)."""
        return asdict(self)
