"""The records that cross module boundaries: the only shapes one stage hands to the next."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

#: ``(start, end)`` character offsets of a sentence piece within its chunk.
Span = tuple[int, int]


@dataclass(frozen=True)
class PageSpan:
    """Characters ``[start, end)`` of a document's text come from one place in the file.

    ``kind`` names the unit a reader looks for: ``page`` (PDF or scanned image), ``slide``
    (pptx/odp), ``sheet`` (xlsx/csv: ``row`` is the spreadsheet's own row number),
    or ``chapter`` (epub). ``page`` is its 1-based number (for a sheet, the sheet's number)
    and ``name`` its title, if it has one (sheet name, chapter title). :func:`qa.text.places.describe` turns spans
    into the words a citation shows: "page 2", "slide 3", "sheet Sales, rows 4–6".
    """

    page: int
    start: int
    end: int
    kind: str = "page"
    name: str = ""
    row: int | None = None


@dataclass(frozen=True)
class Document:
    """A loaded file, or a file attached to one (a mail's attachment).

    ``id`` is the SHA-256 of the file's bytes, so the same content under two names is one
    document. ``source`` is the path relative to the documents folder, with ``/`` separators;
    for an attachment, the mail's followed by the attachment's name (``mail.eml › report.pdf``).
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

    def spans_in(self, start: int, end: int) -> tuple[PageSpan, ...]:
        """The places that characters ``[start, end)`` come from, each cut to that range."""
        # a spreadsheet has a span per row: look the range up instead of scanning them all
        first = max(bisect.bisect_right(self._span_ends, start), 0)
        last = bisect.bisect_left(self._span_starts, max(end, start + 1))
        return clip_spans(self.pages[first:last], start, end)

    @cached_property
    def _span_starts(self) -> list[int]:
        return [span.start for span in self.pages]

    @cached_property
    def _span_ends(self) -> list[int]:
        return [span.end for span in self.pages]


def clip_spans(spans: tuple[PageSpan, ...], start: int, end: int) -> tuple[PageSpan, ...]:
    """The spans overlapping ``[start, end)``, cut to it; for an empty range, the span holding ``start``."""
    if end <= start:
        end = start + 1
    return tuple(replace(s, start=max(s.start, start), end=min(s.end, end))
                 for s in spans if s.start < end and start < s.end)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``.

    The document is named by its content id (``doc_id``), not by file name: the index's
    manifest says which file holds it, and a chunk table stores these records as they are.
    ``page`` is the page (slide, sheet, chapter) the passage starts on; ``spans`` are the
    document's places cut to the passage, so the place of any sentence in it can be found.
    """

    id: str
    doc_id: str
    start: int
    end: int
    page: int | None
    text: str
    spans: tuple[PageSpan, ...] = ()


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its score: a :class:`Chunk` found for a question, with the file
    that holds it (``source``); ``source``/``start``/``end`` locate it exactly.

    ``page`` and ``last_page`` are the first and last page (slide, sheet, chapter) the
    passage covers, None for formats without pages; ``spans`` are its places in full
    (see :class:`PageSpan`), from which a citation finds the page of its own quote.
    """

    chunk_id: str
    doc_id: str
    source: str
    start: int
    end: int
    page: int | None
    text: str
    score: float
    last_page: int | None = None
    spans: tuple[PageSpan, ...] = ()

    @classmethod
    def of(cls, chunk: Chunk, source: str, score: float) -> "Hit":
        """``chunk``, held by the file ``source``, found with ``score``."""
        return cls(chunk_id=chunk.id, doc_id=chunk.doc_id, source=source, start=chunk.start, end=chunk.end,
                   page=chunk.page, text=chunk.text, score=score,
                   last_page=chunk.spans[-1].page if chunk.spans else chunk.page, spans=chunk.spans)


@dataclass(frozen=True)
class SkippedFile:
    """A file (or a file attached to a mail) left out of the index, and why (one line)."""

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

    ``added``/``changed``/``removed``/``unchanged`` count documents (files, and the files attached
    to mails); ``chunks_embedded`` counts
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
    words_searched: int = 0  # words whose translations this build searched (qa.build.neighbours)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``qa index --json`` prints)."""
        return asdict(self)


@dataclass(frozen=True)
class IndexedDocument:
    """One document as the index knows it: the file ``source``, its content id, chunk count,
    size and when it was indexed. The index's manifest keeps one per document.

    ``places`` counts its pages, slides, sheets or chapters ("12 pages"), empty for formats
    without them (read from the chunk table when listed: see :meth:`qa.api.Index.documents`).
    ``container`` is the file of the folder a document was found in when it is not a file of
    its own (a mail, for its attachments; see :mod:`qa.ingest.attachments`), else None.
    ``file_stamp`` is the file's size, times and inode when it was read
    (:func:`qa.ingest.documents.file_stamp`): a build does not read a file whose stamp is
    unchanged. None for attachments, and for entries of a qa that did not record it.
    """

    source: str
    doc_id: str
    chunks: int
    bytes: int
    indexed_at: str
    places: str = ""
    container: str | None = None
    file_stamp: str | None = None


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
class EvidenceSignals:
    """What :mod:`qa.search.verification` weighs to decide whether the first evidence sentence answers.

    Word shares are weighted by each question word's rarity (its SentencePiece unigram cost,
    so "the", "qué" and "wann" weigh little in any language), and a question word matches
    a passage word by the cosine of their word vectors, across languages.
    """

    support: float  # the question's cosine with the sentence (Evidence.score)
    fused: float  # the top passage's hybrid score (qa.search.ranking)
    margin: float  # its lead over the second passage's
    language_gate: float  # how surely question and documents share a language, 0..1
    kind_mismatch: float  # 1 if the sentence cannot hold the kind of answer asked for (a number, a name)
    passage_match: float  # rarity-weighted mean of each question word's best cosine in the passage
    rare_passage_match: float  # the same over the rarer words only
    rare_sentence_match: float  # the same within the quoted sentence
    rarest_match: float  # the worse best cosine of the two rarest question words in the passage
    unknown_rarity: float  # log(1 + rarity the index has no translation for at all)
    same_document: float  # share of the other top passages from the quoted passage's document


@dataclass(frozen=True)
class Verdict:
    """Whether the first evidence sentence answers the question, and how surely (a logit:
    above 0 means supported). ``reading`` says whether the question was read alone or,
    as a follow-up, with the conversation's earlier questions."""

    supported: bool
    confidence: float
    reading: str  # "alone" or "with context"
    signals: EvidenceSignals | None = None


@dataclass(frozen=True)
class Findings:
    """What a search found for a question: the passages, the sentences in them that may
    answer (best first, the first is the one to quote) and the verdict on the first."""

    hits: list[Hit]
    evidence: list[Evidence]
    verdict: Verdict


@dataclass(frozen=True)
class Citation:
    """A numbered quote: ``quote`` is the document text at ``[start:end]`` (PDF: extracted text).

    ``passage`` is the retrieved chunk the quote lies in (``passage_start`` is its offset in
    the document), so a reader can check the quote in context without opening the file.
    ``page`` is the page (slide, sheet, chapter) the quote starts on, and ``location`` says
    in words where the quote is ("page 2", "slide 3", "sheet Sales, rows 4–6"); both are
    None for formats without pages.
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
    location: str | None = None


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


@dataclass
class SearchTrace:
    """A retrieval with what happened on the way (:meth:`qa.api.Index.trace`).

    ``candidates`` are the vector index's (row, cosine) pairs before re-ranking (the hits of
    ``mode="dense"``); ``sentences`` holds, per hit, its sentence pieces as (start, end) in
    the document and their cosine with the question; ``timings`` the seconds of each stage
    (``encode``, ``translations``, ``vector search``, ``re-ranking``, ``passages``, ``total``).
    """

    question: str
    mode: str
    hits: list[Hit]
    candidates: list[tuple[int, float]]
    sentences: list[list[tuple[int, int, float]]]
    timings: dict[str, float]
