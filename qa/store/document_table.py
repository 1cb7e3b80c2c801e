"""A generation's documents: each file's content id, chunk count, size, stamp and container.

They live in SQLite beside the manifest, not in its JSON: every reader parsed the JSON whole
and every update wrote it whole, so a one-document update of a folder of 140,000 files cost
a second or more of JSON, and loading the index built a map of every document for the few a
query's hits name. From the tables a reader looks up only those.

Two files, as the rows are kept in segments (:mod:`qa.store.segments`): ``documents.sqlite``
holds the documents as some build wrote them all, and is hard-linked unchanged into the
generations after it; ``documents_changes.sqlite`` holds every change since: the documents
added or replaced, and the names of the first file's documents they replace or remove
(``shadowed``). An update so writes what changed since the last full write, not every
document (a copy of the 42 MB table of 143,000 documents, hashed and synced, was most of a
one-document update at 1M chunks). When the changes pass ``COMPACT_SHARE`` of the
documents, the next update writes them all again.

:class:`Documents` is what the rest of qa sees: a mapping from file name to
:class:`~qa.types.IndexedDocument` with the lookups a build and a query make.
:class:`DocumentTable` reads a generation's files; :class:`DocumentDict` holds documents in
memory (a first build's, an engine's manifest, which carries them inline);
:class:`DocumentChanges` is an update's documents: the previous table with its changes,
written by :func:`write_documents` when the generation is committed.
"""

from __future__ import annotations

import functools
import itertools
import threading
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..types import IndexedDocument
from .links import link_or_copy
from .sqlite import ReadOnlyDatabase, open_for_writing, rows_in

DOCUMENTS_FILE = "documents.sqlite"
DOCUMENT_CHANGES_FILE = "documents_changes.sqlite"
#: changed and shadowed documents past this share of all documents: the next update writes them all
COMPACT_SHARE = 0.1

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
-- in the changes file: names of documents.sqlite's documents that are replaced or removed
CREATE TABLE shadowed (source TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_COLUMNS = "source, doc_id, chunks, bytes, indexed_at, container, file_stamp"


class Documents(Mapping[str, IndexedDocument]):
    """A generation's documents by file name (iterated in name order)."""

    def all(self, limit: int | None = None) -> dict[str, IndexedDocument]:
        """Every document (the first ``limit``), by file name in order: one read, for what
        needs them all."""
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

    def all(self, limit: int | None = None) -> dict[str, IndexedDocument]:
        return dict(itertools.islice(self._entries.items(), limit))

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
    """The documents of the generation ``folder``, of which the manifest records ``count``.
    Opened by :meth:`open` (after the generation's files are checked), then read as asked,
    from any thread."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        self._count = count
        self._database: ReadOnlyDatabase | None = None
        self._lock = threading.Lock()

    def open(self) -> DocumentTable:
        """Open the files now: they stay readable while this table lives, even if a later
        build removes the generation's folder."""
        with self._lock:
            if self._database is None:
                self._database = ReadOnlyDatabase(self.folder / DOCUMENTS_FILE,
                                                  {"changes": self.folder / DOCUMENT_CHANGES_FILE})
        return self

    def _select(self, where: str, params: tuple | list = (), limit: int | None = None) -> dict[str, IndexedDocument]:
        """The documents matching ``where`` (with its ``params``), by name in order (the first
        ``limit``): the changed ones, and the others of the full table."""
        sql = (f"SELECT {_COLUMNS} FROM changes.documents WHERE {where} UNION ALL "
               f"SELECT {_COLUMNS} FROM main.documents WHERE ({where}) "
               "AND source NOT IN (SELECT source FROM changes.shadowed) ORDER BY source LIMIT ?")
        rows = self.open()._database.query(sql, [*params, *params, -1 if limit is None else limit])
        return {row[0]: _entry(row) for row in rows}

    def __getitem__(self, source: str) -> IndexedDocument:
        found = self._select("source = ?", (source,))
        if not found:
            raise KeyError(source)
        return found[source]

    def __contains__(self, source: object) -> bool:
        return isinstance(source, str) and bool(self._select("source = ?", (source,)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return self._count

    def all(self, limit: int | None = None) -> dict[str, IndexedDocument]:
        return self._select("1", limit=limit)

    def sources_of(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        rows = rows_in(lambda sql, batch: self._select(sql, batch).values(), "doc_id IN ({marks})", sorted(set(doc_ids)))
        for entry in sorted(rows, key=lambda e: (e.doc_id, e.source)):
            found.setdefault(entry.doc_id, []).append(entry.source)
        return found

    def attached_to(self, container: str) -> dict[str, IndexedDocument]:
        return self._select("container = ?", (container,))

    def within(self, prefix: str) -> dict[str, IndexedDocument]:
        # a range of the primary key: names compare as UTF-8 bytes, and no character sorts after U+10FFFF
        return self._select("source >= ? AND source < ?", (prefix, prefix + "\U0010ffff"))

    def holding(self, sources: Iterable[str]) -> set[str]:
        """Which of ``sources`` are documents here (one query a batch: an update may change
        every document)."""
        rows = rows_in(lambda sql, batch: self._select(sql, batch).keys(), "source IN ({marks})", sorted(set(sources)))
        return set(rows)

    def changes(self) -> tuple[dict[str, IndexedDocument], set[str]]:
        """The changes since the full table: documents added or replaced, and the names of
        the full table's documents replaced or removed."""
        database = self.open()._database
        changed = {row[0]: _entry(row) for row in database.query(f"SELECT {_COLUMNS} FROM changes.documents")}
        return changed, {source for (source,) in database.query("SELECT source FROM changes.shadowed")}

    def in_full_table(self, sources: Iterable[str]) -> set[str]:
        """Which of ``sources`` the full table holds (replaced or removed since, or not)."""
        database = self.open()._database
        return {source for (source,) in rows_in(database.query, "SELECT source FROM main.documents WHERE source IN "
                                                                "({marks})", sorted(set(sources)))}


class DocumentChanges(Documents):
    """An update's documents: those of ``base`` with ``changed`` ones added or replaced and
    ``removed`` ones (names in ``base``) gone."""

    def __init__(self, base: DocumentTable, changed: Mapping[str, IndexedDocument], removed: Iterable[str]) -> None:
        self.base = base
        self.changed = dict(sorted(changed.items()))
        self.removed = frozenset(removed) - self.changed.keys()
        self._count = len(base) - len(self.removed) + len(self.changed) - len(base.holding(self.changed))

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

    def all(self, limit: int | None = None) -> dict[str, IndexedDocument]:
        merged = {source: entry for source, entry in self.base.all().items() if source not in self.removed}
        merged.update(self.changed)
        return dict(itertools.islice(sorted(merged.items()), limit))

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


def write_documents(folder: Path, documents: Documents) -> None:
    """Write ``documents`` into the new generation ``folder``: an update's as the previous
    full table (linked) with the changes since it, unless they have grown past
    ``COMPACT_SHARE``; any others in full."""
    if isinstance(documents, DocumentChanges):
        changed, shadowed = documents.base.changes()
        for source in documents.removed | documents.changed.keys():
            changed.pop(source, None)
        changed.update(documents.changed)
        shadowed |= documents.base.in_full_table(documents.removed | documents.changed.keys())
        if len(changed) + len(shadowed) <= COMPACT_SHARE * len(documents):
            link_or_copy(documents.base.folder / DOCUMENTS_FILE, folder / DOCUMENTS_FILE)
            _write(folder / DOCUMENT_CHANGES_FILE, changed.values(), shadowed)
            return
    _write(folder / DOCUMENTS_FILE, documents.all().values(), ())
    _write(folder / DOCUMENT_CHANGES_FILE, (), ())


def _write(path: Path, documents: Iterable[IndexedDocument], shadowed: Iterable[str]) -> None:
    connection = open_for_writing(path)
    try:
        with connection:
            connection.executescript(_SCHEMA)
            connection.executemany(f"INSERT INTO documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (_row(entry) for entry in documents))
            connection.executemany("INSERT INTO shadowed VALUES (?)", ((source,) for source in sorted(shadowed)))
    finally:
        connection.close()


def _row(entry: IndexedDocument) -> tuple:
    return (entry.source, entry.doc_id, entry.chunks, entry.bytes, entry.indexed_at, entry.container, entry.file_stamp)


def _entry(row: tuple) -> IndexedDocument:
    source, doc_id, chunks, size, indexed_at, container, file_stamp = row
    return IndexedDocument(source=source, doc_id=doc_id, chunks=chunks, bytes=size, indexed_at=indexed_at,
                           container=container, file_stamp=file_stamp)
