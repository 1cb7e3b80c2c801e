"""Scanned documents: Spanish text drawn into images (an image-only PDF with no text layer, a
PNG) is read by Tesseract and answers English questions, citing the page the words are on.

These tests need the ``tesseract`` program with its Spanish and English packs (CI installs
them: see .ci/run); without it they are skipped, saying how to install it.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest

import qa
import qa.ingest.ocr
from conftest import REPO
from format_files import image_only_pdf, make_pdf, png_of, render_text_pages
from qa.ingest.documents import parse

MISSING = None if shutil.which("tesseract") else (
    "tesseract not installed: apt-get install -y tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng")
if MISSING is None and not {"spa", "eng"} <= set(qa.ingest.ocr.installed_languages()):
    MISSING = "Tesseract's Spanish and English packs are needed: apt-get install -y tesseract-ocr-spa tesseract-ocr-eng"
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

SCAN_PAGES = [
    "El puerto de Valparaíso es el más antiguo de Chile.\nSus muelles fueron construidos en el siglo XIX.\n"
    "Hoy recibe cruceros durante el verano austral.",
    "El edificio tiene tres pisos y un jardín interior.\n"
    "La primera directora de la biblioteca municipal fue Gabriela Mistral.\nAbre de lunes a sábado.",
]
PNG_TEXT = ("La entrada es gratuita los domingos.\n"
            "El museo de historia natural conserva el esqueleto de una ballena azul.\nAbre a las diez.")


@pytest.fixture(scope="module")
def ocr_cache(tmp_path_factory):
    """A private OCR cache, so every run really recognises the pages once."""
    folder = tmp_path_factory.mktemp("ocr-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(qa.ingest.ocr, "cache_dir", lambda: folder)
        yield folder


@pytest.fixture(scope="module")
def scans(tmp_path_factory, ocr_cache):
    """(documents folder, index dir) with an image-only PDF, a PNG and a half-scanned PDF."""
    folder = tmp_path_factory.mktemp("scans") / "docs"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(image_only_pdf(SCAN_PAGES))
    (folder / "museo.png").write_bytes(png_of(PNG_TEXT))
    (folder / "mixed.pdf").write_bytes(_mixed_pdf())
    index_dir = folder.parent / "index"
    report = qa.build_index(folder, index_dir, progress=False)
    assert report.skipped == [] and report.documents == 3
    return folder, index_dir


def _mixed_pdf() -> bytes:
    """Page 1 has a text layer, page 2 is a picture: as a scanner appends a signed page."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf(["Minutes of the harbour board, typed page."]))))
    writer.append(PdfReader(io.BytesIO(image_only_pdf(["El acta fue firmada por la capitana Rosa Vergara."]))))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_image_only_pdf_has_no_text_layer():
    from pypdf import PdfReader

    assert [page.extract_text().strip() for page in PdfReader(io.BytesIO(image_only_pdf(SCAN_PAGES))).pages] == ["", ""]


def test_scanned_pdf_answers_an_english_question_citing_page_2(scans):
    folder, index_dir = scans
    answer = qa.load(index_dir).ask("Who was the first director of the municipal library?")
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert (citation.source, citation.page, citation.location) == ("scan.pdf", 2, "page 2")
    assert "Gabriela Mistral" in citation.quote
    assert parse((folder / "scan.pdf").read_bytes(), "scan.pdf").text[citation.start:citation.end] == citation.quote


def test_png_answers_an_english_question(scans):
    folder, index_dir = scans
    answer = qa.load(index_dir).ask("Which skeleton does the natural history museum keep?")
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert (citation.source, citation.location) == ("museo.png", "page 1")
    assert "ballena azul" in citation.quote
    assert parse((folder / "museo.png").read_bytes(), "museo.png").text[citation.start:citation.end] == citation.quote


def test_only_the_pages_without_text_are_recognised(scans):
    folder, _ = scans
    document = parse((folder / "mixed.pdf").read_bytes(), "mixed.pdf")
    first, second = (document.text[s.start:s.end] for s in document.pages)
    assert first.startswith("Minutes of the harbour board") and "Rosa Vergara" in second
    assert [s.page for s in document.pages] == [1, 2]


def test_a_rebuild_reads_recognised_pages_from_the_cache(scans, monkeypatch, tmp_path):
    folder, index_dir = scans
    runs = []
    real = qa.ingest.ocr._run_tesseract
    monkeypatch.setattr(qa.ingest.ocr, "_run_tesseract", lambda arguments, data: runs.append(arguments) or real(arguments, data))
    shutil.copytree(index_dir, tmp_path / "index")
    report = qa.build_index(folder, tmp_path / "index", rebuild=True, progress=False)
    assert report.chunks_embedded > 0 and report.skipped == []
    assert [a for a in runs if a[0] == "stdin"] == []  # no page was recognised again


def test_ocr_languages_option_and_a_missing_pack(scans, tmp_path):
    folder, _ = scans
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(folder / "museo.png", docs)
    run = [sys.executable, "-m", "qa.cli", "index", str(docs), "--index-dir", str(tmp_path / "index"), "--json"]
    done = subprocess.run([*run, "--ocr-languages", "spa+eng"], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["documents"] == 1
    bad = subprocess.run([*run, "--ocr-languages", "spa+xyz"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "xyz not installed" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_without_tesseract_scans_are_skipped_saying_how_to_enable_ocr(scans, monkeypatch, tmp_path):
    folder, _ = scans
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract program on the PATH
    docs = tmp_path / "docs"
    shutil.copytree(folder, docs)
    report = qa.build_index(docs, tmp_path / "index", progress=False)
    reasons = {s.source: s.reason for s in report.skipped}
    assert set(reasons) == {"scan.pdf", "museo.png"}
    assert all("apt-get install tesseract-ocr" in r and "\n" not in r for r in reasons.values())
    # the half-scanned PDF keeps its typed page
    assert report.documents == 1
    assert "Minutes of the harbour board" in qa.load(tmp_path / "index").ask("harbour board minutes").citations[0].passage


def test_pages_come_back_in_order_with_progress(ocr_cache, capsys):
    pages = [page.convert("L") for page in render_text_pages(["Primera página.", "Segunda página.", "Tercera página."])]
    images = []
    for page in pages:
        buffer = io.BytesIO()
        page.save(buffer, format="PPM")
        images.append(buffer.getvalue())
    texts = qa.ingest.ocr.recognise_pages("three-pages", [0, 1, 2], images.__getitem__,
                                   qa.ingest.ocr.OcrSettings(languages="spa", progress=True), "three.pdf")
    assert [t.rstrip(".") for t in texts] == ["Primera página", "Segunda página", "Tercera página"]
    assert "OCR three.pdf" in capsys.readouterr().err


def test_each_frame_of_a_tiff_is_a_page(ocr_cache):
    frames = render_text_pages(["Primera hoja del expediente.", "El barco zarpó de Arica al amanecer."])
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    document = parse(buffer.getvalue(), "expediente.tiff", qa.ingest.ocr.OcrSettings(languages="spa"))
    assert [s.page for s in document.pages] == [1, 2]
    assert "zarpó de Arica" in document.text[document.pages[1].start:document.pages[1].end]
