"""Question answering with verifiable citations over a folder of documents, across languages.

    import qa
    report = qa.build_index("seeds", "index")
    index = qa.load("index")
    hits = index.retrieve("Who supplied drones to Russia?", k=5)
"""

from .documents import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from .errors import (
    DocumentError,
    EmbedderError,
    IndexCorruptError,
    IndexFormatError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    QAError,
    QuestionError,
)
from .indexing import build_index
from .retrieval import Index, load, retrieve
from .types import BuildReport, Hit, IndexedDocument, IndexStats, SkippedFile

__all__ = [
    "DEFAULT_MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "BuildReport", "DocumentError", "EmbedderError", "Hit", "Index", "IndexCorruptError", "IndexFormatError",
    "IndexLockedError", "IndexMismatchError", "IndexNotFoundError", "IndexStats", "IndexedDocument", "QAError", "QuestionError",
    "SkippedFile", "build_index", "load", "retrieve",
]
