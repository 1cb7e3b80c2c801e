"""A document a build will embed, held without its text (:class:`NewDocument`), and read
again when its turn comes, in this process or on a Ray worker (:mod:`qa.build.ray_embedding`),
which is why it has a JSON form; and a batch of its chunks once encoded (:class:`EncodedBatch`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DocumentError
from ..ingest.attachments import AttachedFiles
from ..ingest.documents import SourceFile, content_id, parse, read_bytes
from ..ingest.ocr import OcrSettings
from ..store.ranking_rows import language_profile
from ..types import Chunk, Document, PageSpan, Span


@dataclass(frozen=True)
class NewDocument:
    """A document to embed, held without its text until it is embedded (a first build of a
    large folder would otherwise hold every chunk's text at once): the file it is read from,
    its name (the file's, or an attachment's in it), its chunks' ids, offsets and sentence
    pieces, its language profile."""

    file: SourceFile
    source: str
    doc_id: str
    chunk_ids: list[str]
    offsets: np.ndarray  # int64 [chunks, 2]: start, end in the document's text
    pages: list[int | None]
    piece_counts: np.ndarray  # int32 [chunks]
    pieces: np.ndarray  # int32 [pieces, 2]: offsets in their chunk
    profile: np.ndarray

    @classmethod
    def of(cls, file: SourceFile, document: Document, chunks: list[Chunk], pieces: list[list[Span]]) -> NewDocument:
        return cls(file, document.source, document.id, [c.id for c in chunks],
                   np.array([(c.start, c.end) for c in chunks], dtype=np.int64).reshape(-1, 2), [c.page for c in chunks],
                   np.array([len(p) for p in pieces], dtype=np.int32),
                   np.array([span for own in pieces for span in own], dtype=np.int32).reshape(-1, 2),
                   language_profile(document.text))

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def chunks(self, ocr: OcrSettings | None, attached: AttachedFiles) -> Iterator[tuple[Chunk, list[Span]]]:
        """The chunks with their texts, places and pieces, from the file read again (OCR
        text comes from its cache; an attachment is found in its file by ``attached``)."""
        data = read_bytes(self.file)
        if self.source != self.file.source:
            data = attached.find(data, self.file.source, self.source)
        if content_id(data) != self.doc_id:
            raise DocumentError(f"{self.source} changed while it was being indexed; run `qa index` again")
        document = parse(data, self.source, ocr)
        text = document.text
        ends = np.cumsum(self.piece_counts)
        for i, (start, end) in enumerate(self.offsets.tolist()):
            pieces = [(a, b) for a, b in self.pieces[ends[i] - self.piece_counts[i]:ends[i]].tolist()]
            yield Chunk(self.chunk_ids[i], self.doc_id, start, end, self.pages[i], text[start:end],
                        document.spans_in(start, end)), pieces

    def to_json(self) -> str:
        """The document as JSON (what a Ray worker is sent: data, never pickled objects)."""
        return json.dumps({
            "path": str(self.file.path), "file_source": self.file.source, "size": self.file.size,
            "source": self.source, "doc_id": self.doc_id, "chunk_ids": self.chunk_ids,
            "offsets": self.offsets.tolist(), "pages": self.pages, "piece_counts": self.piece_counts.tolist(),
            "pieces": self.pieces.tolist(), "profile": self.profile.tolist(),
        })

    @classmethod
    def from_json(cls, text: str) -> NewDocument:
        raw = json.loads(text)
        return cls(SourceFile(Path(raw["path"]), raw["file_source"], int(raw["size"])), raw["source"], raw["doc_id"],
                   list(raw["chunk_ids"]), np.array(raw["offsets"], dtype=np.int64).reshape(-1, 2), list(raw["pages"]),
                   np.array(raw["piece_counts"], dtype=np.int32), np.array(raw["pieces"], dtype=np.int32).reshape(-1, 2),
                   np.array(raw["profile"], dtype=np.uint32))


@dataclass(frozen=True)
class EncodedBatch:
    """Consecutive new chunks, encoded: the chunks (text and provenance), their sentence
    pieces (offsets in the chunk), chunk vectors [n, dimension], piece vectors [pieces,
    dimension] in chunk order, and their documents' language profiles [n, PROFILE_TOKENS]."""

    chunks: list[Chunk]
    piece_spans: list[list[Span]]
    chunk_vectors: np.ndarray
    piece_vectors: np.ndarray
    profiles: np.ndarray

    @property
    def texts(self) -> list[str]:
        return [chunk.text for chunk in self.chunks]


def provenance_json(chunk: Chunk) -> str:
    """A chunk's provenance without its text, as JSON (what a Ray worker sends back beside the text)."""
    return json.dumps([chunk.id, chunk.doc_id, chunk.start, chunk.end, chunk.page,
                       [[s.page, s.start, s.end, s.kind, s.name, s.row] for s in chunk.spans]], ensure_ascii=False)


def chunk_of(provenance: str, text: str) -> Chunk:
    """The chunk :func:`provenance_json` described, with its ``text``."""
    chunk_id, doc_id, start, end, page, spans = json.loads(provenance)
    return Chunk(chunk_id, doc_id, int(start), int(end), page, text, tuple(PageSpan(*s) for s in spans))
