"""The manifest: what an index holds and how it was built, as JSON.

It names the embedder and chunker settings (so a query is never embedded in another space
than the passages), its documents (each file's content hash, for incremental builds: kept in
``documents.sqlite`` beside it, :mod:`qa.store.document_table`, inline only in an engine's
copy) and each data file's size and SHA-256 (so damage is caught on open instead of
crashing faiss).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexFormatError
from ..types import IndexedDocument
from .document_table import DocumentDict, Documents, DocumentTable
from .segments import SegmentEntry

# 3: the chunk table keeps each chunk's pages/slides/sheet rows (table ``spans``);
# 4: int8 piece vectors with piece_scales.npy, uint8 term counts;
# 5: segments (:mod:`qa.store.segments`): chunk table, vectors and per-row files in seg-*/
#    folders, deleted.npy, and the live rows' statistics with their piece count
# 6: smaller rows (:mod:`qa.store.codecs`): 3-byte n-gram and 4-byte word terms
#    (*_terms.npy), distinct profiles once (profile_ids.npy), deflated chunk text with a
#    dictionary and a documents table (:mod:`qa.store.chunk_table`)
# 7: the documents in documents.sqlite and documents_changes.sqlite (:mod:`qa.store.document_table`),
#    their count here
FORMAT_VERSION = 7
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    """A data file of the index with its size and checksums.

    ``sample_sha256`` covers the size and blocks spread over the file: the check a reader
    makes on open when the full checksum of a large file would cost more than opening it.
    Manifests written before it existed have None, and get the full check.
    """

    bytes: int
    sha256: str
    sample_sha256: str | None = None


@dataclass
class Manifest:
    """Everything needed to open, verify and incrementally update an index."""

    embedder: dict[str, Any]
    chunking: dict[str, int]
    vector_index: dict[str, Any]
    documents: Documents  # by file name (the record's ``source``)
    chunks: int
    docs_dir: str
    built_at: str
    format_version: int = FORMAT_VERSION
    libraries: dict[str, str] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    #: the generation's segments in row order (:mod:`qa.store.segments`) and how many of their
    #: rows are deleted; ``chunks`` counts the live ones
    segments: list[SegmentEntry] = field(default_factory=list)
    deleted: int = 0

    def to_json(self, with_documents: bool = False) -> str:
        """The manifest as JSON: with its documents' count, or (``with_documents``, for an
        engine, which keeps no table beside it) with the documents themselves."""
        raw = asdict(replace(self, documents=DocumentDict()))  # asdict deep-copies: not for the many documents
        del raw["documents"]
        raw["document_count"] = len(self.documents)
        if with_documents:
            raw["documents"] = {source: _stored(entry) for source, entry in self.documents.all().items()}
        # a line per item, not `indent`: json writes indented text in pure Python, 5x slower
        # (1.8 s for 20,000 documents under load, at every update)
        return json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",\n", ": "))

    @classmethod
    def from_json(cls, text: str, where: str, folder: Path | None = None) -> Manifest:
        """Parse a manifest; ``where`` names the file in the error if it is malformed. Its
        documents are those inline, or the table in the generation ``folder`` (not opened
        yet: see :meth:`DocumentTable.open`)."""
        try:
            raw = json.loads(text)
            version = raw.get("format_version")
            if version != FORMAT_VERSION:
                embedder = raw.get("embedder")
                raise IndexFormatError(
                    f"{where} has index format {version!r}, this qa reads format {FORMAT_VERSION}; "
                    "rebuild it with `qa index --rebuild`",
                    model=str(embedder["model"]) if isinstance(embedder, dict) and "model" in embedder else None,
                )
            return cls(
                embedder=dict(raw["embedder"]),
                chunking={k: int(v) for k, v in raw["chunking"].items()},
                vector_index=dict(raw["vector_index"]),
                documents=_documents(raw, folder),
                chunks=int(raw["chunks"]),
                docs_dir=str(raw["docs_dir"]),
                built_at=str(raw["built_at"]),
                format_version=version,
                libraries=dict(raw.get("libraries", {})),
                files={str(k): FileEntry(**v) for k, v in raw["files"].items()},
                segments=[SegmentEntry(str(e["name"]), int(e["rows"]), dict(e["vector_index"])) for e in raw["segments"]],
                deleted=int(raw["deleted"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"{where} is not a valid manifest ({exc}); run `qa index --rebuild`") from exc



def _documents(raw: dict[str, Any], folder: Path | None) -> Documents:
    if "documents" in raw:
        return DocumentDict({str(k): IndexedDocument(source=str(k), **v) for k, v in raw["documents"].items()})
    if folder is None:
        raise KeyError("documents")
    return DocumentTable(folder, int(raw["document_count"]))


def _stored(entry: IndexedDocument) -> dict[str, Any]:
    """A document's manifest record: its file name is the record's key, and its places are
    read from the chunk table when listed, so neither is stored twice."""
    return {name: getattr(entry, name) for name in _STORED_FIELDS}


# an IndexedDocument's fields are plain values: read directly, 10x faster than asdict per document
_STORED_FIELDS = tuple(f.name for f in fields(IndexedDocument) if f.name not in ("source", "places"))


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (recorded for reproducibility)."""
    return {name: version for name in names if (version := _installed_version(name)) is not None}


@functools.cache
def _installed_version(name: str) -> str | None:
    # read once per process: reading a distribution's metadata parses it as a mail (20 ms each,
    # 0.2 s of every update the app made)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
