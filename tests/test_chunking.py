"""Chunks keep exact character offsets into the document's text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from qa.ingest.chunking import ChunkSettings, split
from qa.ingest.documents import parse, read_text
from qa.types import Document

from conftest import FIXTURES, SEED_ARTICLE


def _independent_decode(path) -> str:
    """The file's text decoded without qa's code: UTF-8, BOM dropped, newlines untouched."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return handle.read()


@pytest.mark.parametrize("name", ["lisbon-trams.md", "schwebebahn.txt"])
@pytest.mark.parametrize("size,overlap", [(1000, 143), (300, 60), (120, 0)])
def test_every_chunk_is_the_files_text_at_its_offsets(name, size, overlap):
    path = FIXTURES / name
    document = parse(path.read_bytes(), name)
    chunks = split(document, ChunkSettings(size, overlap))
    text_of = _independent_decode(path)
    assert read_text(path) == text_of
    assert len(chunks) >= 2
    for chunk in chunks:
        assert text_of[chunk.start:chunk.end] == chunk.text
        assert len(chunk.text) <= size
        assert chunk.doc_id == document.id and chunk.page is None


def test_crlf_markdown_offsets_count_the_carriage_returns():
    path = FIXTURES / "lisbon-trams.md"
    document = parse(path.read_bytes(), path.name)
    assert "\r\n" in document.text
    last = split(document, ChunkSettings(300, 60))[-1]
    assert last.end == len(_independent_decode(path).rstrip())


def test_chunks_cover_the_whole_text_in_order():
    document = parse(SEED_ARTICLE.read_bytes(), SEED_ARTICLE.name)
    chunks = split(document, ChunkSettings(400, 80))
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(document.text) if not ch.isspace())


def test_sentences_are_not_cut_when_a_sentence_boundary_fits():
    document = parse(SEED_ARTICLE.read_bytes(), SEED_ARTICLE.name)
    for chunk in split(document, ChunkSettings(1000, 143)):
        assert chunk.text.rstrip()[-1] in ".”\"", chunk.text[-60:]


def test_pages_are_stamped_on_pdf_chunks():
    from test_documents import make_pdf

    pages = [f"Page {n}. " + "Tram lines run through the old town every ten minutes. " * 12 for n in (1, 2, 3)]
    document = parse(make_pdf(pages), "trams.pdf")
    chunks = split(document, ChunkSettings(300, 50))
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        assert document.page_at(chunk.start) == chunk.page
        assert document.text[chunk.start:chunk.end] == chunk.text


@pytest.mark.parametrize("size,overlap,message", [
    (10, 0, "chunk size must be an integer >= 50, got 10"),
    (100, 100, r"chunk overlap must be an integer in \[0, size\), got 100"),
    (100, -1, r"chunk overlap must be an integer in \[0, size\), got -1"),
])
def test_bad_settings_name_the_value(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        ChunkSettings(size, overlap)


_TEXT = st.lists(
    st.sampled_from(list("abcdeé xyz.,;?!\n\r\t") + ["。", "、", "日本", "  ", "\n\n", ". ", "word "]),
    min_size=1, max_size=1500,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=_TEXT, size=st.integers(50, 400), overlap_ratio=st.floats(0, 0.5))
def test_offsets_hold_for_any_text(text, size, overlap_ratio):
    document = Document(id="0" * 64, source="x.txt", text=text)
    settings_ = ChunkSettings(size, int(size * overlap_ratio))
    chunks = split(document, settings_)
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
