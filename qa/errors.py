"""Exceptions raised by the qa package.

Every error a user can cause derives from :class:`QAError`, whose message is one readable
line; the CLI and the app print it as is.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error the qa package raises on purpose."""


class IndexNotFoundError(QAError):
    """There is no index at the given directory."""


class IndexMismatchError(QAError):
    """The index was built with another embedder, chunker settings or format version."""


class IndexFormatError(IndexMismatchError):
    """The index was written in another format version: rebuild it from its documents.

    ``model`` is the encoder the old index was built with, if its manifest names one, so a
    rebuild can keep it.
    """

    def __init__(self, message: str, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class IndexCorruptError(QAError):
    """A file of the index is missing, truncated or altered."""


class IndexLockedError(QAError):
    """Another process is writing the index."""


class DocumentError(QAError):
    """A document cannot be read; the message is the reason it was skipped."""


class QuestionError(QAError):
    """A question is empty, too long or otherwise unusable."""


class EmbedderError(QAError):
    """An embedder cannot be loaded or does not fit the index."""


def first_line(error: object, empty: str = "") -> str:
    """The first line of an error's message (qa's own messages are one line already), or
    ``empty`` if it has none: what a one-line report of a library's error shows."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else empty


class RayError(QAError):
    """A Ray cluster asked for (``qa index --ray``) could not be reached or used."""
