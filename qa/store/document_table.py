"""A generation's documents: each file's content id, chunk count, size, stamp and container.

They live in ``documents.sqlite`` beside the manifest, not in its JSON: every reader parsed
the JSON whole and every update wrote it whole, so a one-document update of a folder of
100,000 files cost a second or more of JSON, and loading the index built a map of every
document for the few a query's hits name. From the table a reader looks up only those, and
an update copies the previous file (a byte copy) and applies its own changes.

:class:`Documents` is what the rest of qa sees: a mapping from file name to
:class:`~qa.types.IndexedDocument` with the lookups a build and a query make.
:class:`DocumentTable` reads a generation's file; :class:`DocumentDict` holds documents in
memory (a first build's, an engine's manifest, which carries them inline);
:class:`DocumentChanges` is an update's documents: the previous table with its changes,
written by :func:`write_documents` when the generation is committed.
"""

from __future__ import annotations

import functools
import shutil
import threading
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..types import IndexedDocument
from .sqlite import ReadOnlyDatabase, open_for_writing, rows_in

DOCUMENTS_FILE = "documents.sqlite"

_SCHEMA = """
CREATE TABLE documents (
    source TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    indexed_at TEXT NOT NULL,
    container TEXT,
    file_stamp TEXT
) WITHOUT ROWID;
CREATE INDEX documents_by_content ON documents (doc_id, source);
CREATE INDEX documents_by_container ON documents (container) WHERE container IS NOT NULL;
"""
_COLUMNS = "source, doc_id, chunks, bytes, indexed_at, container, file_stamp"


class Documents(Mapping[str, IndexedDocument]):
    """A generation's documents by file name (iterated in name order)."""

    def all(self) -> dict[str, IndexedDocument]:
        """Every document, by file name in order: one read, for what needs them all."""
        raise NotImplementedError

    def sources_of(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        """For each of ``doc_ids`` held here: the names of the files holding that content, sorted."""
        raise NotImplementedError

    def attached_to(self, container: str) -> dict[str, IndexedDocument]:
        """The documents found in the file ``container`` (a mail's attachments), by name."""
        raise NotImplementedError

    def within(self, prefix: str) -> dict[str, IndexedDocument]:
        """The documents whose names start with ``prefix`` (a folder's, as ``reports/``), by name."""
        raise NotImplementedError


class DocumentDict(Documents):
    """Documents held in memory."""

    def __init__(self, entries: Mapping[str, IndexedDocument] | None = None) -> None:
        self._entries = dict(sorted((entries or {}).items()))

    def __getitem__(self, source: str) -> IndexedDocument:
        return self._entries[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def all(self) -> dict[str, IndexedDocument]:
        return dict(self._entries)

    def sources_of(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        return {doc_id: self._by_content[doc_id] for doc_id in doc_ids if doc_id in self._by_content}

    def attached_to(self, container: str) -> dict[str, IndexedDocument]:
        return {source: self._entries[source] for source in self._by_container.get(container, [])}

    def within(self, prefix: str) -> dict[str, IndexedDocument]:
        return {source: entry for source, entry in self._entries.items() if source.startswith(prefix)}

    @functools.cached_property
    def _by_content(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for source, entry in self._entries.items():  # in name order: each list comes sorted
            found.setdefault(entry.doc_id, []).append(source)
        return found

    @functools.cached_property
    def _by_container(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for source, entry in self._entries.items():
            if entry.container is not None:
                found.setdefault(entry.container, []).append(source)
        return found


class DocumentTable(Documents):
    """The documents of a generation's ``documents.sqlite``, of which the manifest records
    ``count``. Opened by :meth:`open` (after the generation's files are checked), then read
    as asked, from any thread."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self._count = count
        self._database: ReadOnlyDatabase | None = None
        self._lock = threading.Lock()

    def open(self) -> DocumentTable:
        """Open the file now: it stays readable while this table lives, even if a later build
        removes the generation's folder."""
        with self._lock:
            if self._database is None:
                self._database = ReadOnlyDatabase(self.path)
        return self

    def _query(self, sql: str, params=()) -> list[tuple]:
        return self.open()._database.query(sql, params)

    def __getitem__(self, source: str) -> IndexedDocument:
        rows = self._query(f"SELECT {_COLUMNS} FROM documents WHERE source = ?", (source,))
        if not rows:
            raise KeyError(source)
        return _entry(rows[0])

    def __contains__(self, source: object) -> bool:
        return isinstance(source, str) and bool(self._query("SELECT 1 FROM documents WHERE source = ?", (source,)))

    def __iter__(self) -> Iterator[str]:
        return iter([source for (source,) in self._query("SELECT source FROM documents ORDER BY source")])

    def __len__(self) -> int:
        return self._count

    def all(self) -> dict[str, IndexedDocument]:
        return {row[0]: _entry(row) for row in self._query(f"SELECT {_COLUMNS} FROM documents ORDER BY source")}

    def sources_of(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        rows = rows_in(self._query, "SELECT doc_id, source FROM documents WHERE doc_id IN ({marks})",
                       sorted(set(doc_ids)))
        for doc_id, source in sorted(rows):
            found.setdefault(doc_id, []).append(source)
        return found

    def attached_to(self, container: str) -> dict[str, IndexedDocument]:
        rows = self._query(f"SELECT {_COLUMNS} FROM documents WHERE container = ? ORDER BY source", (container,))
        return {row[0]: _entry(row) for row in rows}

    def within(self, prefix: str) -> dict[str, IndexedDocument]:
        # a range of the primary key: names compare as UTF-8 bytes, and no character sorts after U+10FFFF
        rows = self._query(f"SELECT {_COLUMNS} FROM documents WHERE source >= ? AND source < ? ORDER BY source",
                           (prefix, prefix + "\U0010ffff"))
        return {row[0]: _entry(row) for row in rows}


class DocumentChanges(Documents):
    """An update's documents: those of ``base`` with ``changed`` ones added or replaced and
    ``removed`` ones (names in ``base``) gone."""

    def __init__(self, base: DocumentTable, changed: Mapping[str, IndexedDocument], removed: Iterable[str]) -> None:
        self.base = base
        self.changed = dict(sorted(changed.items()))
        self.removed = frozenset(removed) - self.changed.keys()
        new = sum(source not in base for source in self.changed)
        self._count = len(base) - len(self.removed) + new

    def __getitem__(self, source: str) -> IndexedDocument:
        if source in self.changed:
            return self.changed[source]
        if source in self.removed:
            raise KeyError(source)
        return self.base[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return self._count

    def all(self) -> dict[str, IndexedDocument]:
        merged = {source: entry for source, entry in self.base.all().items() if source not in self.removed}
        merged.update(self.changed)
        return dict(sorted(merged.items()))

    def sources_of(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        doc_ids = set(doc_ids)
        found: dict[str, set[str]] = {}
        for doc_id, sources in self.base.sources_of(doc_ids).items():
            kept = {s for s in sources if s not in self.removed and s not in self.changed}
            if kept:
                found[doc_id] = kept
        for source, entry in self.changed.items():
            if entry.doc_id in doc_ids:
                found.setdefault(entry.doc_id, set()).add(source)
        return {doc_id: sorted(sources) for doc_id, sources in found.items()}

    def attached_to(self, container: str) -> dict[str, IndexedDocument]:
        found = {s: e for s, e in self.base.attached_to(container).items() if s not in self.removed and s not in self.changed}
        found.update({s: e for s, e in self.changed.items() if e.container == container})
        return dict(sorted(found.items()))

    def within(self, prefix: str) -> dict[str, IndexedDocument]:
        found = {s: e for s, e in self.base.within(prefix).items() if s not in self.removed}
        found.update({s: e for s, e in self.changed.items() if s.startswith(prefix)})
        return dict(sorted(found.items()))


def write_documents(path: Path, documents: Documents) -> None:
    """Write ``documents`` as the table at ``path`` (a new generation's): an update's by a
    copy of its base table with the changes applied, any others in full."""
    if isinstance(documents, DocumentChanges):
        shutil.copyfile(documents.base.path, path)
        connection = open_for_writing(path)
        rows = documents.removed
        changed = documents.changed.values()
    else:
        connection = open_for_writing(path)
        connection.executescript(_SCHEMA)
        rows, changed = (), documents.all().values()
    try:
        with connection:
            connection.executemany("DELETE FROM documents WHERE source = ?", ((source,) for source in sorted(rows)))
            connection.executemany(f"INSERT OR REPLACE INTO documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (_row(entry) for entry in changed))
    finally:
        connection.close()


def _row(entry: IndexedDocument) -> tuple:
    return (entry.source, entry.doc_id, entry.chunks, entry.bytes, entry.indexed_at, entry.container, entry.file_stamp)


def _entry(row: tuple) -> IndexedDocument:
    source, doc_id, chunks, size, indexed_at, container, file_stamp = row
    return IndexedDocument(source=source, doc_id=doc_id, chunks=chunks, bytes=size, indexed_at=indexed_at,
                           container=container, file_stamp=file_stamp)
