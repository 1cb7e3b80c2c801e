"""Chunk metadata and text in SQLite, addressed by the vector row.

Only the rows a query needs are read, so an index of a million chunks does not hold its
text in memory. Files are written once and then opened read-only as immutable.

Each chunk's text is stored deflated on its own, so one chunk is read without any other,
with a preset dictionary: the table's first 32 KB of text (zlib's window), kept once in
the table. Neighbouring chunks share their overlap and a document's words, so the text
takes about 40 % of its UTF-8 bytes (50 % deflated alone, without the dictionary).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import IndexCorruptError
from ..text.places import summarize
from .sqlite import ReadOnlyDatabase, open_for_writing, rows_in
from ..types import Chunk, PageSpan

CHUNKS_FILE = "chunks.sqlite"

_SCHEMA = """
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    doc INTEGER NOT NULL,  -- documents.number: a content id is stored once, not per chunk
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    page INTEGER,
    text BLOB NOT NULL  -- raw deflate of the UTF-8 text with the dictionary below
);
CREATE TABLE documents (
    number INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE
);
-- one row: the preset dictionary of every text's deflate stream, itself deflated
CREATE TABLE text_dictionary (
    bytes BLOB NOT NULL
);
-- each chunk's places (pages, slides, sheet rows, ...; see PageSpan), so that a citation
-- can name the place of its quote, not only the place where the chunk starts
CREATE TABLE spans (
    row INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    kind TEXT NOT NULL,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    sheet_row INTEGER
);
"""
_INDEXES = """
CREATE INDEX chunks_by_doc ON chunks (doc, row);
CREATE INDEX spans_by_row ON spans (row, char_start);
"""


_SELECT = ("SELECT c.row, c.id, d.doc_id, c.char_start, c.char_end, c.page, c.text "
           "FROM chunks c JOIN documents d ON d.number = c.doc")
_DICTIONARY_BYTES = 32 * 1024  # deflate's window: a longer dictionary is never referred to
_LEVEL = 9  # 2 % smaller than level 6, and writing stays a small part of a build


def _compressor(dictionary: bytes):
    return zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)


def deflate_text(text: str, dictionary: bytes) -> bytes:
    """``text`` as a raw deflate stream with the preset ``dictionary``."""
    compressor = _compressor(dictionary)
    return compressor.compress(text.encode("utf-8")) + compressor.flush()


def inflate_text(data: bytes, dictionary: bytes) -> str:
    """The text :func:`deflate_text` deflated with ``dictionary``."""
    decompressor = zlib.decompressobj(-15, zdict=dictionary) if dictionary else zlib.decompressobj(-15)
    return (decompressor.decompress(data) + decompressor.flush()).decode("utf-8")


def write_chunks(path: Path, chunks: Iterable[Chunk]) -> None:
    """Write a new chunk table at ``path``: the chunks are its rows 0..n-1, in order."""
    connection = open_for_writing(path)
    try:
        connection.executescript(_SCHEMA)
        spans: list[tuple] = []  # gathered on the way: ``chunks`` may be a one-pass generator
        chunks = iter(chunks)
        first: list[Chunk] = []  # the chunks whose text makes the dictionary, held until it is made
        dictionary = b""
        for chunk in chunks:
            first.append(chunk)
            dictionary += chunk.text.encode("utf-8")
            if len(dictionary) >= _DICTIONARY_BYTES:
                break
        dictionary = dictionary[:_DICTIONARY_BYTES]
        connection.execute("INSERT INTO text_dictionary VALUES (?)", (zlib.compress(dictionary, _LEVEL),))
        documents: dict[str, int] = {}

        def chunk_rows():
            for row, c in enumerate(chain(first, chunks)):
                spans.extend((row, s.start, s.end, s.kind, s.page, s.name, s.row) for s in c.spans)
                doc = documents.setdefault(c.doc_id, len(documents))
                yield row, c.id, doc, c.start, c.end, c.page, deflate_text(c.text, dictionary)

        connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", chunk_rows())
        connection.executemany("INSERT INTO documents VALUES (?, ?)", ((n, d) for d, n in documents.items()))
        connection.executemany("INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?)", spans)
        connection.executescript(_INDEXES)
        connection.commit()
    finally:
        connection.close()


class ChunkTable:
    """Read-only access to a chunk table; safe to share between threads.

    The file stays open for the table's life (see :class:`ReadOnlyDatabase`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._query = ReadOnlyDatabase(path).query
        # fail now, with the file's name, if it is not a chunk table; rows are 0..n-1, so the
        # last one tells their number without counting a million (the primary key's b-tree)
        last = self._query("SELECT MAX(row) FROM chunks")[0][0]
        self.rows = 0 if last is None else int(last) + 1
        # an index of text files has no places: its queries skip the second lookup
        self._has_spans = bool(self._query("SELECT 1 FROM spans LIMIT 1"))
    @functools.cached_property
    def _dictionary(self) -> bytes:
        """The texts' preset dictionary, read when a text is first asked for (an update that
        links this table never reads it)."""
        found = self._query("SELECT bytes FROM text_dictionary")
        try:
            if len(found) == 1:
                return zlib.decompress(found[0][0])
        except (zlib.error, TypeError):
            pass
        raise IndexCorruptError(f"{self.path} has no readable text dictionary; run `qa index --rebuild`")

    def _chunk(self, values: tuple) -> Chunk:
        """A chunk of a row ``(id, doc_id, char_start, char_end, page, deflated text)``."""
        try:
            text = inflate_text(values[5], self._dictionary)
        except (zlib.error, TypeError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"{self.path} has a damaged text ({exc}); run `qa index --rebuild`") from exc
        return Chunk(*values[:5], text)

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM chunks")[0][0])

    def get(self, rows: Sequence[int]) -> list[Chunk]:
        """The chunks at ``rows``, in the order asked."""
        if not rows:
            return []
        found = {
            r[0]: self._chunk(r[1:])
            for r in rows_in(self._query, f"{_SELECT} WHERE c.row IN ({{marks}})", [int(r) for r in rows])
        }
        found = self._with_spans(found)
        missing = [r for r in rows if int(r) not in found]
        if missing:
            raise IndexCorruptError(f"{self.path} lacks rows {missing[:5]}; run `qa index --rebuild`")
        return [found[int(r)] for r in rows]

    def of_documents(self, doc_ids: Iterable[str]) -> tuple[np.ndarray, list[Chunk]]:
        """Every chunk of the given documents and their rows, in row order."""
        found: dict[int, Chunk] = {}
        for doc_id in doc_ids:
            found.update(self._with_spans({r[0]: self._chunk(r[1:]) for r in self._query(
                f"{_SELECT} WHERE d.doc_id = ? ORDER BY c.row",
                (doc_id,),
            )}))
        rows = sorted(found)
        return np.array(rows, dtype=np.int64), [found[row] for row in rows]

    def places_by_document(self) -> dict[str, str]:
        """Content id -> how many pages, slides, sheets or chapters it has ("12 pages"), for
        the documents that have any."""
        places: dict[str, set[tuple[str, int, str]]] = {}
        for doc_id, kind, number, name in self._query(
                "SELECT DISTINCT d.doc_id, s.kind, s.number, s.name FROM spans s JOIN chunks c ON c.row = s.row "
                "JOIN documents d ON d.number = c.doc"):
            places.setdefault(doc_id, set()).add((kind, number, name))
        return {doc_id: summarize(found) for doc_id, found in places.items()}

    def _with_spans(self, chunks: dict[int, Chunk]) -> dict[int, Chunk]:
        """The chunks with their spans read in; a chunk of a format without pages has none."""
        if not chunks or not self._has_spans:
            return chunks
        spans: dict[int, list[PageSpan]] = {}
        for row, start, end, kind, number, name, sheet_row in rows_in(
                self._query, "SELECT row, char_start, char_end, kind, number, name, sheet_row FROM spans "
                "WHERE row IN ({marks}) ORDER BY row, char_start", list(chunks)):
            spans.setdefault(row, []).append(PageSpan(number, start, end, kind, name, sheet_row))
        return {row: replace(c, spans=tuple(spans[row])) if row in spans else c for row, c in chunks.items()}
