"""E-mail messages: ``.eml`` (MIME, read by the standard library) and Outlook ``.msg`` (read
by extract-msg, an optional dependency). A mail's own text is its subject, sender,
recipients and date, then its body; each attached file is a document of its own (see
:mod:`qa.ingest.attachments`)."""

from __future__ import annotations

import email
import logging
import mimetypes
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Callable

from ..errors import DocumentError
from .plain_text import html_text
from .provenance import TextAssembler


@dataclass(frozen=True)
class Attachment:
    """A file attached to a mail: its name as the mail gives it (never empty) and its bytes,
    or why they could not be taken out of the mail."""

    name: str
    data: bytes
    unreadable: str = ""


@dataclass(frozen=True)
class Mail:
    """A mail read: its own text (headers and body) and its attached files, in mail order."""

    text: str
    attachments: tuple[Attachment, ...]


def read_eml(data: bytes) -> Mail:
    """A MIME message: headers, the plain-text body (else the HTML one), attachments."""
    message = email.message_from_bytes(data, policy=policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise DocumentError("not an e-mail message (no headers)")
    if any(type(d).__name__ in ("CloseBoundaryNotFoundDefect", "StartBoundaryNotFoundDefect") for d in message.defects):
        raise DocumentError("truncated e-mail message (a MIME part is not closed)")
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        content = body_part.get_content()
        body = html_text(content.encode("utf-8")) if body_part.get_content_type() == "text/html" else content
    headers = [(name, message.get(name)) for name in ("Subject", "From", "To", "Date")]
    attachments = []
    for number, part in enumerate(message.iter_attachments(), start=1):
        if part.get_content_maintype() == "image" and part.get("Content-ID"):
            continue  # a picture the HTML body shows (a logo, a signature): part of the body, not a document
        if part.get_content_type() == "message/rfc822":  # a forwarded mail: its payload is a parsed message
            inner = part.get_payload(0)
            name = part.get_filename() or f"{_one_line(inner.get('Subject')) or f'message {number}'}.eml"
            attachments.append(_attached(name, lambda: inner.as_bytes(policy=policy.default)))
        else:
            extension = mimetypes.guess_extension(part.get_content_type()) or ""
            name = part.get_filename() or f"attachment {number}{extension}"
            attachments.append(Attachment(_file_name(name), part.get_payload(decode=True) or b""))
    return Mail(_own_text(headers, body), tuple(attachments))


def read_msg(data: bytes) -> Mail:
    """An Outlook message: headers, body, attachments (needs the ``outlook`` extra)."""
    try:
        import extract_msg
    except ImportError:
        raise DocumentError("reading Outlook .msg files needs extract-msg: pip install 'qa[outlook]'") from None
    # extract-msg logs each defect of a damaged file as an error; the skip reason is what the user needs
    logging.getLogger("extract_msg").setLevel(logging.CRITICAL)

    message = extract_msg.openMsg(data)
    try:
        headers = [("Subject", message.subject), ("From", message.sender), ("To", message.to),
                   ("Date", message.date.isoformat(sep=" ") if message.date else None)]
        attachments = []
        for number, attachment in enumerate(message.attachments, start=1):
            content = getattr(attachment, "data", None)
            if isinstance(content, extract_msg.MSGFile):  # an attached Outlook item
                name = attachment.getFilename() or f"{_one_line(content.subject) or f'message {number}'}.msg"
                # allowBadEmbed: some writers leave a stream Outlook does not; extract-msg repairs it
                attachments.append(_attached(name, lambda: content.exportBytes(allowBadEmbed=True)))
            elif isinstance(content, bytes):
                name = attachment.getFilename() or f"attachment {number}"
                if attachment.cid and (mimetypes.guess_type(name)[0] or "").startswith("image/"):
                    continue  # a picture the HTML body shows, as in read_eml
                attachments.append(Attachment(_file_name(name), content))
        return Mail(_own_text(headers, message.body or ""), tuple(attachments))
    finally:
        message.close()


def _attached(name: str, take: Callable[[], bytes]) -> Attachment:
    """An attached mail, as the bytes ``take`` writes it to; a mail that cannot be written out
    is an unreadable attachment, not an unreadable mail."""
    try:
        return Attachment(_file_name(name), take())
    except Exception as exc:  # noqa: BLE001 - the mail libraries raise what their writers meet
        reason = f"cannot take the attached mail out ({type(exc).__name__}: {_one_line(exc)[:200]})"
        return Attachment(_file_name(name), b"", reason)


def _own_text(headers: list[tuple[str, object]], body: str) -> str:
    text = TextAssembler()
    text.add("\n".join(f"{name}: {_one_line(value)}" for name, value in headers if value))
    text.add(body.strip())
    return text.text


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split())


def _file_name(name: str) -> str:
    """The last part of an attachment's name, on one line: a name is shown, never a path to follow."""
    return _one_line(name.replace("\\", "/").rsplit("/", 1)[-1]) or "attachment"


READERS: dict[str, Callable[[bytes], Mail]] = {".eml": read_eml, ".msg": read_msg}

