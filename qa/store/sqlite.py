"""SQLite in an index generation: files written once by a build, then read-only and shared
between threads; and ``IN (...)`` lists in batches SQLite accepts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from ..errors import IndexCorruptError


# Values bound in one statement: SQLite builds before 3.32 accept at most 999.
_SQLITE_VARIABLES = 900


def rows_in(query: Callable[[str, Sequence], list[tuple]], sql: str, values: Sequence) -> Iterator[tuple]:
    """The rows of ``sql``, whose ``{marks}`` stands for an ``IN`` list, for every one of
    ``values``, asked in batches SQLite accepts."""
    values = list(values)
    for i in range(0, len(values), _SQLITE_VARIABLES):
        batch = values[i:i + _SQLITE_VARIABLES]
        yield from query(sql.format(marks=",".join("?" * len(batch))), batch)


def open_for_writing(path: Path) -> sqlite3.Connection:
    """A connection for a build to write a file of a new generation: no journal and no
    syncing, because the file is private to the build's workspace until the commit, which
    fsyncs every file before the generation becomes visible."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    return connection


class ReadOnlyDatabase:
    """One read-only connection to ``path``, serialised by a lock.

    The file is opened at once and stays open: a rebuild may delete this generation's
    folder while queries still use it, and POSIX keeps an open file alive until closed.
    One connection serves all threads (queries here take microseconds, a lock is cheaper
    than a connection per thread opened lazily -- possibly after the file is gone).
    """

    def __init__(self, path: Path, attached: Mapping[str, Path] | None = None) -> None:
        self.path = path
        try:
            self._connection = sqlite3.connect(_read_only_uri(path), uri=True, check_same_thread=False)
            for schema, other in (attached or {}).items():  # more files of the generation, as ``schema.table``
                self._connection.execute(f"ATTACH DATABASE ? AS {schema}", (_read_only_uri(other),))
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"cannot open {path}: {exc}; run `qa index --rebuild`") from exc
        self._lock = threading.Lock()

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """All rows of ``sql``; a damaged file raises :class:`IndexCorruptError` naming it."""
        try:
            with self._lock:
                return self._connection.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"cannot read {self.path}: {exc}; run `qa index --rebuild`") from exc


def _read_only_uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro&immutable=1"
