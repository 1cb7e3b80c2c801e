"""Small documents of every supported format, made in memory by the libraries that write them
(python-pptx, openpyxl, odfpy, ebooklib, the standard library's email, fpdf2, Pillow)."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path


def make_pdf(pages: list[str]) -> bytes:
    """A real PDF with one page per string (fpdf2 core font: Latin-1 text)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_pptx(slides: list[tuple[str, str, str]]) -> bytes:
    """One slide per (title, body, speaker notes)."""
    from pptx import Presentation

    presentation = Presentation()
    for title, body, notes in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    """One sheet per name, its rows as given (the first row is the header)."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_odt(paragraphs: list[str]) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text=paragraphs[0]))
    for paragraph in paragraphs[1:]:
        document.text.addElement(P(text=paragraph))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def make_odp(slides: list[list[str]]) -> bytes:
    """One slide per list of text lines, each line a frame."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for lines in slides:
        page = Page(masterpagename=master)
        document.presentation.addElement(page)
        for line in lines:
            frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
            box = TextBox()
            box.addElement(P(text=line))
            frame.addElement(box)
            page.addElement(frame)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def make_epub(chapters: list[tuple[str, str]]) -> bytes:
    """One chapter per (title, paragraph), with a table of contents."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("qa-test-book")
    book.set_title("Harbours of the South")
    book.set_language("en")
    items = []
    for number, (title, paragraph) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        item.content = f"<html><body><h1>{title}</h1><p>{paragraph}</p></body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = [epub.Link(item.file_name, item.title, f"c{n}") for n, item in enumerate(items, start=1)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    path = io.BytesIO()
    epub.write_epub(path, book)
    return path.getvalue()


def make_mail(subject: str, body: str, to: str = "harbour-office@example.org") -> EmailMessage:
    """A plain-text mail with the headers a mail reader shows (subject, from, to, date)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Marta Ruiz <marta@example.org>"
    message["To"] = to
    message["Date"] = "Tue, 03 Mar 2026 10:15:00 +0100"
    message.set_content(body)
    return message


def make_eml(subject: str, body: str, attachments: dict[str, bytes]) -> bytes:
    message = make_mail(subject, body)
    for name, data in attachments.items():
        maintype, subtype = ("text", "plain") if name.endswith(".txt") else ("application", "octet-stream")
        if maintype == "text":
            message.add_attachment(data.decode("utf-8"), subtype=subtype, filename=name)
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(message)


def make_rtf(paragraphs: list[str]) -> bytes:
    """A plain RTF file; non-ASCII characters as \\uN escapes, as word processors write them."""
    def escaped(text: str) -> str:
        return "".join(c if ord(c) < 128 else f"\\u{ord(c)}?" for c in text)
    body = "".join(f"\\pard {escaped(p)}\\par\n" for p in paragraphs)
    return ("{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times New Roman;}}\n" + body + "}").encode("ascii")


def render_text_pages(pages: list[str], width: int = 2000, height: int = 2600) -> list:
    """Each string drawn in black on a white page image (about 240 dpi for a letter page)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(_font(), 40)
    images = []
    for text in pages:
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        y = 150
        for line in text.splitlines():
            draw.text((120, y), line, fill=0, font=font)
            y += 70
        images.append(image)
    return images


def image_only_pdf(pages: list[str]) -> bytes:
    """A PDF whose pages are pictures of the text: no text layer at all."""
    images = render_text_pages(pages)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=240)
    return buffer.getvalue()


def png_of(text: str) -> bytes:
    buffer = io.BytesIO()
    render_text_pages([text])[0].save(buffer, format="PNG")
    return buffer.getvalue()


def _font() -> str:
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                      "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"):
        if Path(candidate).exists():
            return candidate
    raise FileNotFoundError("no TrueType font to draw test pages with (Debian: fonts-dejavu-core)")


def truncated(data: bytes) -> bytes:
    """The first half of a file, as an interrupted download leaves it."""
    return data[: len(data) // 2]


def encrypted_office(data: bytes, password: str = "secret") -> bytes:
    """An Office file protected by a password, as Office saves it (msoffcrypto-tool)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    source, target = io.BytesIO(data), io.BytesIO()
    OOXMLFile(source).encrypt(password, target)
    return target.getvalue()


def encrypted_odf(data: bytes) -> bytes:
    """An OpenDocument file whose manifest declares its content encrypted, as LibreOffice's
    "save with password" does (the content itself is left as is: the manifest is what a
    reader checks first)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "META-INF/manifest.xml":
                content = content.replace(
                    b'manifest:full-path="content.xml"',
                    b'manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum-type="SHA1"'
                    b' manifest:checksum="x"/></manifest:file-entry><manifest:file-entry manifest:media-type=""'
                    b' manifest:full-path="x"', 1)
            target.writestr(item, content)
    return buffer.getvalue()


def make_msg(subject: str, body: str, attachments: dict[str, bytes],
             forwarded: tuple[tuple[str, str, dict[str, bytes]], ...] = ()) -> bytes:
    """An Outlook .msg file, written by aspose-email-foss (qa reads it with extract-msg), with
    ``forwarded`` (subject, body, attachments) items attached as Outlook messages."""
    import tempfile

    message = _mapi_message(subject, body, attachments)
    for inner in forwarded:
        message.add_embedded_message_attachment(_mapi_message(*inner), filename=f"{inner[0]}.msg")
    with tempfile.TemporaryDirectory() as folder:  # it writes to a named file only
        path = Path(folder) / "message.msg"
        message.save(str(path))
        return path.read_bytes()


def _mapi_message(subject: str, body: str, attachments: dict[str, bytes]):
    from datetime import datetime, timezone

    from aspose.email_foss import msg

    message = msg.MapiMessage.create(subject, body)
    message.set_property(msg.PropertyId.SENDER_NAME, "Marta Ruiz")
    message.set_property(msg.PropertyId.SENDER_EMAIL_ADDRESS, "marta@example.org")
    message.set_property(msg.PropertyId.MESSAGE_DELIVERY_TIME, datetime(2026, 3, 3, 10, 15, tzinfo=timezone.utc))
    message.add_recipient("office@example.org", display_name="Harbour office")
    for name, data in attachments.items():
        message.add_attachment(name, data, mime_type="text/plain")
    return message


def with_encryption_listing(epub: bytes, encrypted: list[str]) -> bytes:
    """The book with a META-INF/encryption.xml listing ``encrypted`` as a DRM scheme (or a
    publisher's font obfuscation) does."""
    entries = "".join(f'<enc:EncryptedData><enc:CipherData><enc:CipherReference URI="{name}"/></enc:CipherData>'
                      "</enc:EncryptedData>" for name in encrypted)
    listing = ('<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
               f'xmlns:enc="http://www.w3.org/2001/04/xmlenc#">{entries}</encryption>')
    buffer = io.BytesIO(epub)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("META-INF/encryption.xml", listing)
    return buffer.getvalue()
