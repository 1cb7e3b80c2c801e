"""Query words' translations found at build time: a table from a word to its nearest vocabulary words.

Finding a query word's translations at query time means encoding it (if the index has never
seen it) and searching the vocabulary graph: together about a third of a dense query's time
per question. A build already knows which words questions will mostly use: the vocabulary's
own, and the words the bundled encoder's tokenizer knows whole (:mod:`qa.encode.whole_words`). It searches the
graph for all of them once and stores the result here, so a query only looks its words up.
Words the table lacks take the query-time path, which gives the same neighbours.

Each row holds a word's candidates before the words out of use are left out (see
:func:`qa.store.vocabulary.word_candidates`): removing a document changes no row, and a query
leaves out the words no chunk contains any more, as its own search does. Rows of that kind
are format ``FORMAT`` (SQLite's user_version); tables of earlier builds hold the filtered
neighbours of their day, still right for their own generation.
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .protocols import Neighbours
from .sqlite import ReadOnlyDatabase, open_for_writing, rows_in

NEIGHBOURS_FILE = "word_neighbours.sqlite"
FORMAT = 2


def write(path: Path, batches: Iterable[tuple[Sequence[str], np.ndarray, np.ndarray]], whole_words: str) -> None:
    """Store each batch's words with their candidates, given as arrays [words, n] of ids (-1
    past the last) and cosines; a word already stored keeps its first entry. ``whole_words``
    names the whole-word table the rows were found for (:func:`whole_words_of`)."""
    connection = open_for_writing(path)
    try:
        connection.execute(f"PRAGMA user_version = {FORMAT}")
        connection.execute("CREATE TABLE neighbours (word TEXT PRIMARY KEY, ids BLOB NOT NULL, cosines BLOB NOT NULL)"
                           " WITHOUT ROWID")
        connection.execute("CREATE TABLE built_with (whole_words TEXT NOT NULL)")
        connection.execute("INSERT INTO built_with VALUES (?)", (whole_words,))
        for words, ids, cosines in batches:
            connection.executemany("INSERT OR IGNORE INTO neighbours VALUES (?, ?, ?)", _rows(words, ids, cosines))
        connection.commit()
    finally:
        connection.close()


def whole_words_of(path: Path) -> str | None:
    """The whole-word table a FORMAT table's rows were found for; None for another format."""
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        if connection.execute("PRAGMA user_version").fetchone()[0] != FORMAT:
            return None
        return str(connection.execute("SELECT whole_words FROM built_with").fetchone()[0])
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()


class TableUpdate:
    """A copy of a FORMAT table being changed in place by a build (a private workspace file)."""

    def __init__(self, path: Path) -> None:
        self._connection = open_for_writing(path)

    def get(self, words: Sequence[str]) -> dict[str, tuple[tuple[int, ...], tuple[float, ...]]]:
        """The stored candidates (ids, cosines) of those ``words`` the table holds."""
        return {word: (near.ids, near.cosines)
                for word, near in _select(lambda sql, p: self._connection.execute(sql, p).fetchall(), words).items()}

    def put(self, words: Sequence[str], ids: np.ndarray, cosines: np.ndarray) -> None:
        """Store (or replace) the candidates of ``words``, arrays as for :func:`write`."""
        self._connection.executemany("INSERT OR REPLACE INTO neighbours VALUES (?, ?, ?)", _rows(words, ids, cosines))

    def close(self) -> None:
        self._connection.commit()
        self._connection.close()


def _rows(words: Sequence[str], ids: np.ndarray, cosines: np.ndarray) -> list[tuple[str, bytes, bytes]]:
    return sorted(zip(words, _row_bytes(ids, "<i8"), _row_bytes(cosines, "<f4")))  # in key order: faster


def _row_bytes(values: np.ndarray, dtype: str) -> list[bytes]:
    """Each row of ``values`` as the bytes of ``dtype`` numbers, without a Python loop."""
    rows = np.ascontiguousarray(values, dtype=dtype)
    return rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel().tolist()


class NeighbourTable:
    """A generation's stored neighbours, read-only; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._query = ReadOnlyDatabase(path).query

    def get(self, words: Sequence[str]) -> dict[str, Neighbours]:
        """The stored rows of those ``words`` that the table holds."""
        return _select(self._query, words)


def _select(query: Callable[[str, Sequence], list[tuple]], words: Sequence[str]) -> dict[str, Neighbours]:
    found: dict[str, Neighbours] = {}
    for word, ids, cosines in rows_in(query, "SELECT word, ids, cosines FROM neighbours WHERE word IN ({marks})", words):
        # struct, not NumPy: a third of the time for three numbers
        ids, cosines = struct.unpack(f"<{len(ids) // 8}q", ids), struct.unpack(f"<{len(cosines) // 4}f", cosines)
        kept = len(ids) - ids.count(-1)  # -1 pads the words that have fewer neighbours
        found[word] = Neighbours(ids[:kept], cosines[:kept])
    return found
