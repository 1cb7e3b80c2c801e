"""Every document format end to end: each file is made by the test, indexed with the bundled
encoder among bad files of every kind, and asked a question whose answer sits on a later
slide, sheet, chapter or page. The citation must name that place, and its quote must be the
extracted text at its offsets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import qa
from conftest import REPO
from format_files import (
    encrypted_odf,
    encrypted_office,
    make_eml,
    make_epub,
    make_msg,
    make_odp,
    make_odt,
    make_pdf,
    make_pptx,
    make_rtf,
    make_xlsx,
    png_of,
    truncated,
    with_encryption_listing,
)
from qa.ingest.attachments import SEPARATOR
from qa.ingest.documents import parse
from qa.text.places import describe
from qa.types import PageSpan

# page 1 is short, so the first chunk runs on into page 2, where the answer is
PDF_PAGES = [
    "Water supply of the northern coast. Annual report of the regional water board.",
    "The desalination plant of Antofagasta produces 600 litres of drinking water per second. "
    "It was extended in 2021.",
]

# the mails' attachments, each indexed as a document of its own
ATTACHED = {
    "mail.eml › shift-notes.txt": b"The night shift at the container terminal starts at ten in the evening.\n",
    "memo.msg › parking.txt": b"Visitors park their cars behind the customs building.\n",
}


def good_files() -> dict[str, bytes]:
    return {
        "report.pdf": make_pdf(PDF_PAGES),
        "deck.pptx": make_pptx([
            ("Quarterly budget", "Spending on office supplies fell by a tenth.", ""),
            ("New staff", "Two engineers joined the maintenance team.",
             "Remind everyone that the glacier tour departs every Tuesday at seven in the morning."),
            ("Lighthouse", "The old lighthouse of Punta Arenas was repainted red in 1998.", ""),
        ]),
        "ports.xlsx": make_xlsx({
            "Fleet": [["Ship", "Tonnage", "Built"], ["Aurora", 1200, 1987], ["Cormorán", 800, 2004]],
            "Harbours": [["Port", "Country", "Cranes"], ["Valparaíso", "Chile", 14], ["Rotterdam", "Netherlands", 112],
                         ["Callao", "Peru", 31]],
        }),
        "cities.csv": "City;Region;Founded\nIquique;Tarapacá;1879\nValdivia;Los Ríos;1552\n".encode("utf-8"),
        "notes.odt": make_odt(["Island travel notes", "We stayed three nights in Castro.",
                               "The ferry to Chiloé leaves the pier at noon every day."]),
        "talk.odp": make_odp([["Welcome to the port city"], ["Opening hours",
                                                             "The maritime museum is closed on Mondays."]]),
        "book.epub": make_epub([("Arrival", "We arrived in the north by night bus."),
                                ("The Storm", "A storm kept the fishing boats in the harbour for a week."),
                                ("The Rivers", "The Loa is the longest river in Chile, 440 kilometres long.")]),
        "mail.eml": make_eml("Terminal schedule", "Hello,\nthe quay wall repairs are finished.\nRegards, Marta",
                             {"shift-notes.txt": ATTACHED["mail.eml › shift-notes.txt"]}),
        "memo.msg": make_msg("Office holiday",
                             "The harbour office will be closed on the first of May for Labour Day.",
                             {"parking.txt": ATTACHED["memo.msg › parking.txt"]}),
        "letter.rtf": make_rtf(["Dear colleagues,", "The suspension bridge over the Baker river opened in 1952.",
                                "Año nuevo, vida nueva."]),
    }


# question, file, the place its citation must name, words the quote must hold
CASES = [
    ("How much drinking water does the desalination plant of Antofagasta produce?", "report.pdf", "page 2",
     "600 litres"),
    ("What colour was the lighthouse of Punta Arenas repainted?", "deck.pptx", "slide 3", "repainted red"),
    ("When does the glacier tour depart?", "deck.pptx", "slide 2", "every Tuesday"),  # a speaker note
    ("How many cranes does the port of Rotterdam have?", "ports.xlsx", "sheet Harbours, row 3", "Cranes: 112"),
    ("When was Valdivia founded?", "cities.csv", "row 3", "Founded: 1552"),
    ("When does the ferry to Chiloé leave?", "notes.odt", None, "at noon"),
    ("On which day is the maritime museum closed?", "talk.odp", "slide 2", "closed on Mondays"),
    ("Which is the longest river in Chile?", "book.epub", "chapter 3: The Rivers", "longest river"),
    ("When does the night shift at the container terminal start?", "mail.eml › shift-notes.txt", None,
     "ten in the evening"),
    ("When is the harbour office closed?", "memo.msg", None, "first of May"),
    ("Where do visitors park their cars?", "memo.msg › parking.txt", None, "behind the customs"),
    ("When did the bridge over the Baker river open?", "letter.rtf", None, "1952"),
]


def bad_files(good: dict[str, bytes]) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, words its skip reason must hold)."""
    from test_documents import make_docx

    bad = {f"cut-{name}": (truncated(good[name]), reason) for name, reason in [
        ("deck.pptx", "not a valid PPTX file"), ("ports.xlsx", "not a valid XLSX file"),
        ("notes.odt", "not a valid ODT file"), ("talk.odp", "not a valid ODP file"),
        ("book.epub", "not a valid EPUB file"), ("mail.eml", "truncated e-mail"),
        ("memo.msg", "not a valid MSG file"), ("letter.rtf", "truncated or damaged RTF"),
    ]}
    bad["cut-scan.png"] = (truncated(png_of("Texto escaneado.")), "not a valid image file")
    bad["locked.pptx"] = (encrypted_office(good["deck.pptx"]), "password-protected (encrypted) Office file")
    bad["locked.xlsx"] = (encrypted_office(good["ports.xlsx"]), "password-protected (encrypted) Office file")
    bad["locked.docx"] = (encrypted_office(make_docx(["Secret."])), "password-protected (encrypted) Office file")
    bad["locked.odt"] = (encrypted_odf(good["notes.odt"]), "password-protected (encrypted) OpenDocument file")
    bad["drm.epub"] = (with_encryption_listing(good["book.epub"], ["EPUB/chapter2.xhtml"]), "encrypted (DRM-protected) EPUB")
    for suffix in (".pptx", ".xlsx", ".csv", ".odt", ".odp", ".epub", ".eml", ".msg", ".rtf", ".png", ".jpg", ".tiff"):
        bad[f"empty{suffix}"] = (b"", "empty file")
    return bad


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """(documents folder, index dir, build report, good files) for a folder of every format."""
    folder = tmp_path_factory.mktemp("formats") / "docs"
    folder.mkdir()
    good = good_files()
    for name, data in {**good, **{n: d for n, (d, _) in bad_files(good).items()}}.items():
        (folder / name).write_bytes(data)
    index_dir = folder.parent / "index"
    report = qa.build_index(folder, index_dir, progress=False)
    return folder, index_dir, report, good


def test_bad_files_of_every_type_are_skipped_with_a_one_line_reason(library):
    folder, _, report, good = library
    reasons = {s.source: s.reason for s in report.skipped}
    for name, (_, expected) in bad_files(good).items():
        assert name in reasons, f"{name} was not skipped"
        assert expected in reasons[name] and "\n" not in reasons[name], (name, reasons[name])
    assert set(reasons) == set(bad_files(good))  # nothing else was skipped
    assert report.documents == len(good) + 2  # every good file was indexed, and the two mails' attachments


@pytest.mark.parametrize("question, source, place, words", CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_answer_cites_the_place_of_its_quote(library, question, source, place, words):
    folder, index_dir, _, _ = library
    answer = qa.load(index_dir).ask(question)
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert citation.source == source, (citation.source, citation.quote)
    assert words in citation.quote
    assert citation.location == place
    data = (folder / source).read_bytes() if SEPARATOR not in source else ATTACHED[source]
    document = parse(data, source)
    assert document.text[citation.start:citation.end] == citation.quote
    assert citation.passage == document.text[citation.passage_start:citation.passage_start + len(citation.passage)]


def test_qa_ask_json_cites_the_pdf_page_that_holds_the_quote(library):
    """Issue 13: the chunk starts on page 1, the quote is on page 2; it is cited as page 2."""
    _, index_dir, _, _ = library
    question = CASES[0][0]
    run = [sys.executable, "-m", "qa.cli"]
    answer = json.loads(subprocess.run([*run, "ask", question, "--index-dir", str(index_dir), "--json"], cwd=REPO,
                                       capture_output=True, text=True, check=True).stdout)
    citation = answer["citations"][0]
    assert citation["source"] == "report.pdf" and "600 litres" in citation["quote"]
    assert citation["page"] == 2 and citation["location"] == "page 2"
    hits = json.loads(subprocess.run([*run, "search", question, "-k", "1", "--index-dir", str(index_dir), "--json"],
                                     cwd=REPO, capture_output=True, text=True, check=True).stdout)
    assert hits[0]["chunk_id"] == citation["chunk_id"]
    assert (hits[0]["page"], hits[0]["last_page"]) == (1, 2)  # the passage runs over both pages


def test_documents_list_their_pages_slides_sheets_and_chapters(library):
    _, index_dir, _, _ = library
    places = {d.source: d.places for d in qa.load(index_dir).documents()}
    assert places["report.pdf"] == "2 pages"
    assert places["deck.pptx"] == "3 slides"
    assert places["ports.xlsx"] == "2 sheets"
    assert places["book.epub"] == "3 chapters"
    assert places["mail.eml"] == places["mail.eml › shift-notes.txt"] == ""  # a mail and a text file have no pages
    assert places["notes.odt"] == ""  # OpenDocument text has no fixed pages


def test_places_survive_an_incremental_update(library, tmp_path):
    """Chunks carried over from the previous generation keep their places."""
    import shutil

    folder, index_dir, _, _ = library
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(folder, docs)
    shutil.copytree(index_dir, index)
    (docs / "extra.txt").write_text("The fish market opens at dawn.", encoding="utf-8")
    report = qa.build_index(docs, index, progress=False)
    assert report.added == 1 and report.chunks_embedded == 1
    citation = qa.load(index).ask(CASES[1][0]).citations[0]
    assert (citation.source, citation.location) == ("deck.pptx", "slide 3")


def test_msg_without_extract_msg_says_how_to_enable_it(library, monkeypatch):
    folder, _, _, _ = library
    monkeypatch.setitem(sys.modules, "extract_msg", None)  # as if the extra were not installed
    with pytest.raises(qa.errors.DocumentError, match=r"pip install 'qa\[outlook\]'"):
        parse((folder / "memo.msg").read_bytes(), "memo.msg")


def test_places_are_described_as_a_reader_looks_for_them():
    def span(page, kind="page", name="", row=None):
        return PageSpan(page, 0, 1, kind, name, row)

    assert describe([]) is None
    assert describe([span(2)]) == "page 2"
    assert describe([span(2), span(3)]) == "pages 2–3"
    assert describe([span(4, "slide")]) == "slide 4"
    assert describe([span(1, "sheet", "Sales", 4), span(1, "sheet", "Sales", 6)]) == "sheet Sales, rows 4–6"
    assert describe([span(1, "sheet", "", 9)]) == "row 9"
    assert describe([span(1, "sheet", "A", 40), span(2, "sheet", "B", 2)]) == "sheet A, row 40 – sheet B, row 2"
    assert describe([span(3, "chapter", "The Rivers")]) == "chapter 3: The Rivers"


def test_spreadsheet_rows_keep_their_headers_and_row_numbers():
    document = parse(make_xlsx({"Harbours": [["Port", "Cranes", None], ["Callao", 31, "busy"], [None, None, None],
                                             ["Arica", 5.0, None]]}), "h.xlsx")
    assert document.text == "Port; Cranes\nPort: Callao; Cranes: 31; busy\nPort: Arica; Cranes: 5"
    assert [(s.name, s.row) for s in document.pages] == [("Harbours", 1), ("Harbours", 2), ("Harbours", 4)]
    assert [document.text[s.start:s.end] for s in document.pages] == document.text.split("\n")


def test_an_epub_with_obfuscated_fonts_only_is_read():
    """Publishers list obfuscated fonts in encryption.xml too; that is no DRM."""
    book = with_encryption_listing(make_epub([("Rivers", "The Loa is the longest river in Chile.")]),
                                   ["EPUB/fonts/serif.otf"])
    assert "longest river" in parse(book, "b.epub").text
