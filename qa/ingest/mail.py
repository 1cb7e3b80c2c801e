"""E-mail messages: ``.eml`` (MIME, read by the standard library) and Outlook ``.msg`` (read
by extract-msg, an optional dependency). The text is the subject, sender, recipients and
date, the body, and then each attached file of a supported type, read as a document of its
own kind and cited as "attachment NAME"."""

from __future__ import annotations

import email
import logging
from email import policy
from email.message import EmailMessage
from typing import Callable, Iterable

from ..errors import DocumentError
from .plain_text import html_text
from .provenance import TextAssembler
from ..types import PageSpan

#: (file name, bytes) -> the attachment's text, or None to leave it out (the documents
#: module's dispatcher: this module reads mail, not the formats of what is attached).
AttachmentReader = Callable[[str, bytes], "str | None"]


def eml_text(data: bytes, read_attachment: AttachmentReader) -> tuple[str, tuple[PageSpan, ...]]:
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
    attachments = ((part.get_filename() or "", part.get_payload(decode=True) or b"") for part in message.iter_attachments())
    return _assemble(headers, body, attachments, read_attachment)


def msg_text(data: bytes, read_attachment: AttachmentReader) -> tuple[str, tuple[PageSpan, ...]]:
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
        attachments = [(attachment.getFilename() or "", attachment.data)
                       for attachment in message.attachments if isinstance(getattr(attachment, "data", None), bytes)]
        return _assemble(headers, message.body or "", attachments, read_attachment)
    finally:
        message.close()


def _assemble(headers: list[tuple[str, object]], body: str, attachments: Iterable[tuple[str, bytes]],
              read_attachment: AttachmentReader) -> tuple[str, tuple[PageSpan, ...]]:
    text = TextAssembler()
    text.add("\n".join(f"{name}: {' '.join(str(value).split())}" for name, value in headers if value))
    text.add(body.strip())
    readable = ((name, read_attachment(name, data)) for name, data in attachments)
    for number, (name, document) in enumerate(((n, d) for n, d in readable if d is not None), start=1):
        text.add(document, number, kind="attachment", name=name)
    return text.text, text.spans


READERS: dict[str, Callable[[bytes, AttachmentReader], tuple[str, tuple[PageSpan, ...]]]] = {
    ".eml": eml_text, ".msg": msg_text,
}
