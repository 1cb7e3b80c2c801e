"""Query words' translations found at build time: a table from a word to its nearest vocabulary words.

Finding a query word's translations at query time means encoding it (if the index has never
seen it) and searching the vocabulary graph: together about a third of a dense query's time
per question. A build already knows which words questions will mostly use: the vocabulary's
own, and the words the bundled encoder's tokenizer knows whole (:mod:`qa.whole_words`). It searches the
graph for all of them once and stores the result here, so a query only looks its words up.
Words the table lacks take the query-time path, which gives the same neighbours.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .readonly_db import ReadOnlyDatabase

NEIGHBOURS_FILE = "word_neighbours.sqlite"
_SQLITE_VARIABLES = 900


@dataclass(frozen=True)
class Neighbours:
    """A query word's nearest vocabulary words (ids) and their cosines, best first."""

    ids: tuple[int, ...]
    cosines: tuple[float, ...]


def write(path: Path, batches: Iterable[tuple[Sequence[str], np.ndarray, np.ndarray]]) -> None:
    """Store each batch's words with their neighbours, given as arrays [words, n] of ids (-1
    past the last) and cosines; a word already stored keeps its first entry."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=OFF")  # a private file; fsynced at commit
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("CREATE TABLE neighbours (word TEXT PRIMARY KEY, ids BLOB NOT NULL, cosines BLOB NOT NULL)"
                           " WITHOUT ROWID")
        for words, ids, cosines in batches:
            rows = sorted(zip(words, _row_bytes(ids, "<i8"), _row_bytes(cosines, "<f4")))  # in key order: faster
            connection.executemany("INSERT OR IGNORE INTO neighbours VALUES (?, ?, ?)", rows)
        connection.commit()
    finally:
        connection.close()


def _row_bytes(values: np.ndarray, dtype: str) -> list[bytes]:
    """Each row of ``values`` as the bytes of ``dtype`` numbers, without a Python loop."""
    rows = np.ascontiguousarray(values, dtype=dtype)
    return rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel().tolist()


class NeighbourTable:
    """A generation's stored neighbours, read-only; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._query = ReadOnlyDatabase(path).query

    def get(self, words: Sequence[str]) -> dict[str, Neighbours]:
        """The stored neighbours of those ``words`` that the table holds."""
        found: dict[str, Neighbours] = {}
        words = list(words)
        for i in range(0, len(words), _SQLITE_VARIABLES):
            batch = words[i:i + _SQLITE_VARIABLES]
            marks = ",".join("?" * len(batch))
            for word, ids, cosines in self._query(f"SELECT word, ids, cosines FROM neighbours WHERE word IN ({marks})",
                                                  batch):
                # struct, not NumPy: a third of the time for three numbers
                ids, cosines = struct.unpack(f"<{len(ids) // 8}q", ids), struct.unpack(f"<{len(cosines) // 4}f", cosines)
                kept = len(ids) - ids.count(-1)  # -1 pads the words that have fewer neighbours
                found[word] = Neighbours(ids[:kept], cosines[:kept])
        return found
