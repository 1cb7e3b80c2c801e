"""Reading each format into text: encodings, HTML, PDF pages, DOCX, and what gets skipped."""

from __future__ import annotations

import io
import os

import pytest

from format_files import make_pdf
from qa.ingest.documents import content_id, decode_text, parse, read_text, scan
from qa.errors import DocumentError

SPANISH = "Ya se sabe que Rusia ha recibido drones de Irán. Año, niño, acción: 5 €."


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("data", [
    SPANISH.encode("utf-8"),
    b"\xef\xbb\xbf" + SPANISH.encode("utf-8"),
    SPANISH.encode("utf-16"),  # with its byte-order mark
    SPANISH.encode("cp1252"),  # legacy Windows Western text: ñ must stay ñ
])
def test_text_encodings_decode_to_the_same_text(data):
    assert decode_text(data) == SPANISH


def test_legacy_cyrillic_is_recognised():
    text = "Россия получила беспилотники из Ирана для войны против Украины."
    assert decode_text(text.encode("cp1251")) == text


def test_newlines_are_not_normalised():
    assert decode_text(b"one\r\ntwo\rthree\n") == "one\r\ntwo\rthree\n"


def test_broken_utf8_is_refused_with_position():
    data = "Irán y Rusia ".encode("utf-8") + b"\xff\xfe" + " más texto".encode("utf-8")
    with pytest.raises(DocumentError, match=r"invalid UTF-8 \(byte 0xff at offset 14\)"):
        decode_text(data)


def test_binary_data_is_refused():
    with pytest.raises(DocumentError, match="binary data"):
        decode_text(b"\x7fELF\x02\x01\x01\x00\x00\x00" + os.urandom(200))


def test_html_keeps_visible_text_in_reading_order():
    page = """<html><head><title>Drones</title><style>p {color: red}</style>
    <script>var secret = "do not index";</script></head>
    <body><h1>Arms trade</h1><p>Russia received <b>drones</b> from Iran.</p>
    <ul><li>first</li><li>second</li></ul><table><tr><td>a</td><td>b</td></tr></table></body></html>"""
    document = parse(page.encode("utf-8"), "page.html")
    assert "Russia received drones from Iran." in document.text
    assert "do not index" not in document.text and "color" not in document.text
    lines = document.text.splitlines()
    assert lines.index("Arms trade") < lines.index("Russia received drones from Iran.") < lines.index("first")


def test_pdf_keeps_page_numbers():
    data = make_pdf(["Page one talks about tram lines.", "Page two says Iran supplied drones.", "Page three."])
    document = parse(data, "report.pdf")
    assert [span.page for span in document.pages] == [1, 2, 3]
    second = document.pages[1]
    assert "Iran supplied drones" in document.text[second.start:second.end]
    assert document.page_at(document.text.index("Iran supplied")) == 2
    assert document.page_at(0) == 1


def test_malformed_pdf_is_refused():
    with pytest.raises(DocumentError, match="malformed PDF"):
        parse(b"%PDF-1.7\n1 0 obj <<>> garbage", "broken.pdf")


def test_docx_paragraphs_and_tables_in_order():
    data = make_docx(["Intro paragraph.", "Second paragraph."], table=[["Country", "Supplied"], ["Iran", "drones"]])
    document = parse(data, "brief.docx")
    assert document.text.splitlines() == ["Intro paragraph.", "Second paragraph.", "Country | Supplied", "Iran | drones"]


def test_corrupt_docx_is_refused():
    with pytest.raises(DocumentError, match="not a valid DOCX"):
        parse(b"PK\x03\x04 not really a zip", "broken.docx")


def test_document_id_is_the_content_hash():
    a = parse(SPANISH.encode("utf-8"), "a.txt")
    b = parse(SPANISH.encode("utf-8"), "sub/b.txt")
    assert a.id == b.id == content_id(SPANISH.encode("utf-8"))
    assert len(a.id) == 64


def test_read_text_is_the_files_own_characters(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfl\xc3\xadnea uno\r\nl\xc3\xadnea dos")
    assert read_text(path) == "línea uno\r\nlínea dos"


def test_scan_reports_each_skipped_file_with_a_reason(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.txt").write_text("Some text.", encoding="utf-8")
    (docs / "sub" / "nested.md").write_text("# Nested", encoding="utf-8")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (docs / "big.txt").write_text("x" * 2000, encoding="utf-8")
    (docs / ".hidden.txt").write_text("ignored", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the folder", encoding="utf-8")
    (docs / "link.txt").symlink_to(outside)

    found, skipped = scan(docs, max_file_bytes=1000)

    assert [f.source for f in found] == ["good.txt", "sub/nested.md"]
    reasons = {s.source: s.reason for s in skipped}
    assert set(reasons) == {"empty.txt", "clip.mp4", "big.txt", "link.txt"}
    assert reasons["empty.txt"] == "empty file"
    assert "unsupported file type '.mp4'" in reasons["clip.mp4"]
    assert "too large" in reasons["big.txt"] and "1,000" in reasons["big.txt"]
    assert "outside the documents folder" in reasons["link.txt"]


def test_scan_of_a_missing_folder_names_it(tmp_path):
    with pytest.raises(DocumentError, match="documents folder not found: .*nowhere"):
        scan(tmp_path / "nowhere")
