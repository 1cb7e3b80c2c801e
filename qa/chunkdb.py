"""Chunk metadata and text in SQLite, addressed by the vector row.

Only the rows a query needs are read, so an index of a million chunks does not hold its
text in memory. Files are written once and then opened read-only as immutable.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import IndexCorruptError
from .readonly_db import ReadOnlyDatabase

CHUNKS_FILE = "chunks.sqlite"

_SCHEMA = """
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL
);
"""
_INDEX_BY_DOC = "CREATE INDEX chunks_by_doc ON chunks (doc_id, row);"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored: its document is named by content id, not by file name."""

    row: int
    id: str
    doc_id: str
    start: int
    end: int
    page: int | None
    text: str


def write_chunks(path: Path, chunks: Iterable[StoredChunk]) -> None:
    """Write a new chunk table at ``path``; rows must be 0..n-1 in order."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=OFF")  # a fresh file in a private folder
        connection.execute("PRAGMA synchronous=OFF")  # the caller fsyncs before the swap
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((c.row, c.id, c.doc_id, c.start, c.end, c.page, c.text) for c in chunks),
        )
        connection.execute(_INDEX_BY_DOC)
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
        self.count()  # fail now, with the file's name, if it is not a chunk table

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM chunks")[0][0])

    def get(self, rows: Sequence[int]) -> list[StoredChunk]:
        """The chunks at ``rows``, in the order asked."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {
            r[0]: StoredChunk(*r)
            for r in self._query(
                f"SELECT row, id, doc_id, char_start, char_end, page, text FROM chunks WHERE row IN ({marks})",
                [int(r) for r in rows],
            )
        }
        missing = [r for r in rows if int(r) not in found]
        if missing:
            raise IndexCorruptError(f"{self.path} lacks rows {missing[:5]}; run `qa index --rebuild`")
        return [found[int(r)] for r in rows]

    def of_documents(self, doc_ids: Iterable[str]) -> list[StoredChunk]:
        """Every chunk of the given documents, in row order."""
        result: list[StoredChunk] = []
        for doc_id in doc_ids:
            result.extend(StoredChunk(*r) for r in self._query(
                "SELECT row, id, doc_id, char_start, char_end, page, text FROM chunks WHERE doc_id = ? ORDER BY row",
                (doc_id,),
            ))
        return sorted(result, key=lambda c: c.row)
