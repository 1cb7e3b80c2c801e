"""Question answering with verifiable citations over a folder of documents, across languages.

    import qa
    report = qa.build_index("seeds", "index")
    index = qa.load("index")
    hits = index.retrieve("Who supplied drones to Russia?", k=5)

The package is layered; docs/architecture.md shows how data flows through it. Layers, lowest
first: a module imports only from its own part and from lower layers, and the parts named on
one line do not import one another (tests/test_architecture.py reads every import and checks
this list):

    1. errors | types | machine | checksums | recently_used
    2. text
    3. ingest | encode | store
    4. build | search
    5. answer
    6. langchain_retriever
    7. api
    8. eval
    9. cli | app

``text`` is pure text handling (words, sentences, language, places); ``ingest`` reads files
into documents and chunks; ``encode`` turns text into vectors; ``store`` keeps an index's
generations behind protocols (:mod:`qa.store.protocols`); ``build`` writes a new generation;
``search`` ranks passages and judges evidence; ``answer`` writes answers from evidence;
``langchain_retriever`` adapts an index to LangChain; ``api`` is the :class:`Index` facade; ``eval`` is ``qa eval``; ``cli`` and ``app`` are the
faces.
"""

from importlib import import_module
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .ingest.documents import SUPPORTED_SUFFIXES
    from .ingest.limits import DEFAULT_MAX_FILE_BYTES
    from .build.builder import build_index
    from .api import Index, load, retrieve
    from .types import BuildReport, Hit, IndexedDocument, IndexStats, SkippedFile

# The rest of the API is imported on first use (PEP 562): a process that only answers
# questions never imports the build side (document parsers, chunker, word table), which
# took a third of a cold `qa ask`.
_LAZY = {
    "DEFAULT_MAX_FILE_BYTES": "ingest.limits", "SUPPORTED_SUFFIXES": "ingest.documents", "build_index": "build.builder",
    "Index": "api", "load": "api", "retrieve": "api", "BuildReport": "types", "Hit": "types",
    "IndexedDocument": "types", "IndexStats": "types", "SkippedFile": "types",
}

__all__ = [
    "DEFAULT_MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "BuildReport", "DocumentError", "EmbedderError", "Hit", "Index", "IndexCorruptError", "IndexFormatError",
    "IndexLockedError", "IndexMismatchError", "IndexNotFoundError", "IndexStats", "IndexedDocument", "QAError", "QuestionError",
    "SkippedFile", "build_index", "load", "retrieve",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
