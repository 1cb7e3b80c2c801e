"""Files inside the files of a documents folder: the attachments of a mail, each indexed as a
document of its own, named after the mail that holds it: ``mail.eml › report.pdf`` (and
``mail.eml › forwarded.eml › table.xlsx`` for a mail attached to a mail).

A mail can be made to hold many files or to nest mails deeply at little cost (MIME does not
compress, so its attachments are never larger than the mail itself). So a mail's first
:data:`MAX_ATTACHMENTS` attachments are read, nested mails :data:`MAX_DEPTH` deep, each
attachment no larger than a file of the folder may be; the rest is skipped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .documents import content_id, reason_not_to_read
from ..errors import DocumentError
from .mail import READERS
from ..types import SkippedFile

SEPARATOR = " › "
MAX_ATTACHMENTS = 100  # in one mail
MAX_DEPTH = 3  # a mail's attachments are depth 1, those of a mail attached to it depth 2, ...


@dataclass(frozen=True)
class InnerFile:
    """A file attached inside a file of the folder: its name (``mail.eml › report.pdf``) and bytes."""

    source: str
    data: bytes


@dataclass(frozen=True)
class Unpacked:
    """The files a file holds, depth first in mail order, and those left out with their reasons."""

    files: tuple[InnerFile, ...]
    skipped: tuple[SkippedFile, ...]


def holds_files(source: str) -> bool:
    """Whether a file of this name can hold attachments (a mail)."""
    return Path(source).suffix.lower() in READERS


def unpack(data: bytes, source: str, max_file_bytes: int) -> Unpacked:
    """The files attached inside ``data`` (the file named ``source``), the attachments of
    attached mails included. ``data`` must be readable as a mail (the mail's own text was read
    first); an attached mail that cannot be read gives no files (its own reading says why)."""
    files: list[InnerFile] = []
    skipped: list[SkippedFile] = []
    _unpack(data, source, 1, max_file_bytes, files, skipped)
    return Unpacked(tuple(files), tuple(skipped))


class AttachedFiles:
    """Finds attached files by name for a build that reads its documents again to embed them.

    The files of the last file asked about are kept, so a mail whose attachments are asked for
    one after another is unpacked once, not once per attachment.
    """

    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self._unpacked: tuple[str, str] | None = None  # (file name, content id) of the files kept
        self._files: dict[str, bytes] = {}

    def find(self, data: bytes, source: str, wanted: str) -> bytes:
        """The bytes of the attached file named ``wanted`` inside ``data`` (the file ``source``)."""
        if self._unpacked != (source, content_id(data)):
            self._files = {inner.source: inner.data for inner in unpack(data, source, self.max_file_bytes).files}
            self._unpacked = (source, content_id(data))
        if wanted not in self._files:
            raise DocumentError(f"{wanted} is no longer attached; run `qa index` again")
        return self._files[wanted]


def _unpack(data: bytes, source: str, depth: int, max_file_bytes: int, files: list[InnerFile],
            skipped: list[SkippedFile]) -> None:
    try:
        attachments = READERS[Path(source).suffix.lower()](data).attachments
    except Exception:  # noqa: BLE001 - a damaged attached mail: reading its own text reports why
        return
    taken: set[str] = set()
    for number, attachment in enumerate(attachments, start=1):
        inner = f"{source}{SEPARATOR}{_unique(attachment.name, taken)}"
        if number > MAX_ATTACHMENTS:
            skipped.append(SkippedFile(inner, f"the mail has {len(attachments)} attachments; this one and any after "
                                              f"it are not read (at most {MAX_ATTACHMENTS} a mail)"))
            return
        if depth > MAX_DEPTH:
            skipped.append(SkippedFile(inner, f"attached {depth} mails deep; attachments are read at most "
                                              f"{MAX_DEPTH} mails deep"))
            continue
        reason = attachment.unreadable or reason_not_to_read(attachment.name, len(attachment.data), max_file_bytes)
        if reason:
            skipped.append(SkippedFile(inner, reason))
            continue
        files.append(InnerFile(inner, attachment.data))
        if holds_files(attachment.name):
            _unpack(attachment.data, inner, depth + 1, max_file_bytes, files, skipped)


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``... if an earlier attachment of the same mail has it: each
    document needs a name of its own."""
    path = Path(name)
    unique, copy = name, 1
    while unique in taken:
        copy += 1
        unique = f"{path.stem} ({copy}){path.suffix}"
    taken.add(unique)
    return unique
