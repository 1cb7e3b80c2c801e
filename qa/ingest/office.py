"""Readers for office formats: presentations (pptx, odp), spreadsheets (xlsx, csv), OpenDocument
text (odt) and RTF.

Each returns the extracted text and the place each part comes from (see
:class:`~qa.types.PageSpan`): the slide for a presentation, the sheet and row for a
spreadsheet. A spreadsheet row is written with its column headers ("Country: Chile; Ships:
40"), so any passage of a long table can be read on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from typing import Any, Callable, Iterable, Sequence

from ..errors import DocumentError
from .plain_text import decode_text
from .provenance import TextAssembler
from ..types import PageSpan

Read = Callable[[bytes], "tuple[str, tuple[PageSpan, ...]]"]


def pptx_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """Each slide's text (text boxes, tables, grouped shapes) and its speaker notes."""
    from pptx import Presentation

    text = TextAssembler()
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, start=1):
        lines = list(_pptx_shape_lines(slide.shapes))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        # a line break inside a paragraph comes out as a vertical tab
        text.add("\n".join(line for line in lines if line.strip()).replace("\v", "\n"), number, kind="slide")
    return text.text, text.spans


def _pptx_shape_lines(shapes) -> Iterable[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _pptx_shape_lines(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                yield " | ".join(cell.text.strip() for cell in row.cells)
        elif shape.has_text_frame:
            yield shape.text_frame.text


def xlsx_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """Every sheet's rows, each with its column headers; formulas give their saved values."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        text = TextAssembler()
        for number, sheet in enumerate(workbook.worksheets, start=1):
            _add_table(text, sheet.iter_rows(min_row=1, values_only=True), number, sheet.title)
        return text.text, text.spans
    finally:
        workbook.close()


def csv_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """The rows of a CSV file (delimiter detected: comma, semicolon, tab or bar), each with
    its column headers."""

    content = decode_text(data)
    try:
        dialect: Any = csv.Sniffer().sniff(content[:65536], delimiters=",;\t|")
    except csv.Error:  # one column, or too irregular to tell: the default comma
        dialect = csv.excel
    text = TextAssembler()
    _add_table(text, csv.reader(io.StringIO(content, newline=""), dialect), 1, "")
    return text.text, text.spans


def _add_table(text: TextAssembler, rows: Iterable[Sequence[Any]], sheet: int, name: str) -> None:
    """Add a table's rows after its first non-empty row (the header), one line each."""
    header: list[str] | None = None
    for number, values in enumerate(rows, start=1):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        if header is None:  # a sheet starts a new paragraph with its header row
            header, line, separator = cells, "; ".join(c for c in cells if c), "\n\n"
        else:
            line = "; ".join(f"{header[i]}: {c}" if i < len(header) and header[i] else c
                             for i, c in enumerate(cells) if c)
            separator = "\n"
        text.add(line, sheet, kind="sheet", name=name, row=number, separator=separator)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())  # a cell's line breaks would break the one-line row


def odt_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """Headings and paragraphs (tables and lists included) of an OpenDocument text, in order.

    The format has no fixed pages (they depend on the program that lays it out), so none
    are recorded.
    """
    document = _open_odf(data)
    return "\n".join(_odf_paragraphs(document.text)), ()


def odp_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """Each slide's text and its speaker notes, of an OpenDocument presentation."""
    from odf.draw import Page

    document = _open_odf(data)
    text = TextAssembler()
    for number, slide in enumerate(document.presentation.getElementsByType(Page), start=1):
        text.add("\n".join(_odf_paragraphs(slide)), number, kind="slide")
    return text.text, text.spans


def _open_odf(data: bytes):
    from odf.opendocument import load

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "META-INF/manifest.xml" in archive.namelist() and b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise DocumentError("password-protected (encrypted) OpenDocument file")
    return load(io.BytesIO(data))


def _odf_paragraphs(element) -> Iterable[str]:
    """The text of every paragraph and heading under ``element``, in document order."""
    from odf import teletype
    from odf.namespaces import TEXTNS

    for child in element.childNodes:
        if child.nodeType != child.ELEMENT_NODE:
            continue
        if child.qname in ((TEXTNS, "p"), (TEXTNS, "h")):
            line = teletype.extractText(child)
            if line.strip():
                yield line
        else:
            yield from _odf_paragraphs(child)


def rtf_text(data: bytes) -> tuple[str, tuple[PageSpan, ...]]:
    """The text of an RTF file (RTF is 7-bit; other characters come as escapes)."""
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise DocumentError("not an RTF file (it does not start with {\\rtf)")
    source = data.decode("latin-1")
    # a truncated file leaves groups open; counted without escaped braces and backslashes
    bare = re.sub(r"\\[\\{}]", "", source)
    if bare.count("{") != bare.count("}"):
        raise DocumentError("truncated or damaged RTF file (unbalanced braces)")
    return rtf_to_text(source, errors="replace").strip(), ()


READERS: dict[str, Read] = {
    ".pptx": pptx_text, ".xlsx": xlsx_text, ".csv": csv_text, ".odt": odt_text, ".odp": odp_text, ".rtf": rtf_text,
}
