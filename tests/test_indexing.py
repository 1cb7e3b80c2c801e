"""Incremental builds with the real encoder: only new or changed content is embedded."""

from __future__ import annotations

import re
import shutil

import pytest

import qa
from qa.ingest.chunking import ChunkSettings, split
from qa.ingest.documents import parse
from qa.store import document_table
from qa.store.document_table import DocumentTable
from qa.store.folder import IndexDirectory
from qa.store.manifest import FORMAT_VERSION

from conftest import FIXTURES, SEED_ARTICLE, age_index
from test_documents import make_docx, make_pdf

NEW_DOC = """El puerto de Valparaíso

Valparaíso es una ciudad portuaria de Chile famosa por sus ascensores, funiculares construidos entre 1883 y 1916 para subir los cerros. El ascensor Artillería lleva al Paseo 21 de Mayo.

En 2003 la UNESCO declaró su casco histórico Patrimonio de la Humanidad. Los murales pintados en las fachadas de los cerros Alegre y Concepción atraen a miles de visitantes cada año.
"""


def chunk_count(path) -> int:
    return len(split(parse(path.read_bytes(), path.name), ChunkSettings()))


def test_add_edit_delete_embed_only_what_changed(seeds_copy, tmp_path):
    index_dir = tmp_path / "index"
    first = qa.build_index(seeds_copy, index_dir, progress=False)
    seed_chunks = chunk_count(SEED_ARTICLE)
    assert (first.added, first.chunks_embedded, first.chunks) == (1, seed_chunks, seed_chunks)

    new = seeds_copy / "valparaiso.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    added = qa.build_index(seeds_copy, index_dir, progress=False)
    assert (added.added, added.changed, added.removed, added.unchanged) == (1, 0, 0, 1)
    assert added.chunks_embedded == chunk_count(new)
    assert qa.load(index_dir).retrieve("ascensores de Valparaíso", k=1)[0].source == "valparaiso.txt"

    new.write_text(NEW_DOC + "\nEl poeta Pablo Neruda tuvo una casa en el cerro Florida, La Sebastiana.\n", encoding="utf-8")
    edited = qa.build_index(seeds_copy, index_dir, progress=False)
    assert (edited.added, edited.changed, edited.unchanged) == (0, 1, 1)
    assert edited.chunks_embedded == chunk_count(new)
    assert "Neruda" in qa.load(index_dir).retrieve("¿Qué poeta tuvo una casa en un cerro de Valparaíso?", k=1)[0].text

    new.unlink()
    removed = qa.build_index(seeds_copy, index_dir, progress=False)
    assert (removed.removed, removed.chunks_embedded, removed.chunks) == (1, 0, seed_chunks)
    assert {h.source for h in qa.load(index_dir).retrieve("Valparaíso", k=10)} == {SEED_ARTICLE.name}

    generation = IndexDirectory(index_dir).current_generation()
    again = qa.build_index(seeds_copy, index_dir, progress=False)
    assert (again.chunks_embedded, again.unchanged, again.added + again.changed + again.removed) == (0, 1, 0)
    assert IndexDirectory(index_dir).current_generation() == generation  # nothing rewritten


def test_same_content_under_two_names_is_embedded_once(seeds_copy, tmp_path):
    shutil.copy(seeds_copy / SEED_ARTICLE.name, seeds_copy / "copy.txt")
    report = qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    assert report.added == 2
    assert report.chunks_embedded == report.chunks == chunk_count(SEED_ARTICLE)
    index = qa.load(tmp_path / "index")
    assert {d.source for d in index.documents()} == {"copy.txt", SEED_ARTICLE.name}


def test_a_renamed_file_is_not_embedded_again(seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    (seeds_copy / SEED_ARTICLE.name).rename(seeds_copy / "renamed.txt")
    report = qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    assert (report.added, report.removed, report.chunks_embedded) == (1, 1, 0)
    assert qa.load(tmp_path / "index").retrieve("drones", k=1)[0].source == "renamed.txt"


def test_rebuild_embeds_everything_again(seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    report = qa.build_index(seeds_copy, tmp_path / "index", rebuild=True, progress=False)
    assert report.chunks_embedded == chunk_count(SEED_ARTICLE)


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(seeds_copy, tmp_path):
    (seeds_copy / "empty.txt").write_bytes(b"")
    (seeds_copy / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (seeds_copy / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    report = qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    reasons = {s.source: s.reason for s in report.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["clip.mp4"].startswith("unsupported file type '.mp4'")
    assert reasons["broken.pdf"].startswith("malformed PDF")
    assert report.added == 1 and report.documents == 1


def test_a_file_that_turns_unreadable_keeps_its_indexed_version(seeds_copy, tmp_path):
    docx_path = seeds_copy / "brief.docx"
    docx_path.write_bytes(make_docx(["The Lisbon tram 28 climbs through Alfama."]))
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    docx_path.write_bytes(b"PK\x03\x04 corrupted on disk")
    report = qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    assert report.skipped[0].source == "brief.docx"
    assert "kept the previously indexed version" in report.skipped[0].reason
    assert qa.load(tmp_path / "index").retrieve("tram through Alfama", k=1)[0].source == "brief.docx"


def test_pdf_and_docx_are_indexed_with_pdf_pages(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    pages = [
        "Annual report. The tram company carried 20 million passengers this year.",
        "Fleet. The funicular of Lavra opened in 1884 and is the oldest in Lisbon.",
        "Finance. Ticket revenue rose by four percent.",
    ]
    (docs / "report.pdf").write_bytes(make_pdf(pages))
    (docs / "memo.docx").write_bytes(make_docx(["Memo: the Santa Justa lift connects the Baixa with Carmo."]))
    report = qa.build_index(docs, tmp_path / "index", progress=False)
    assert (report.added, report.skipped) == (2, [])

    index = qa.load(tmp_path / "index", model=None)
    hit = index.retrieve("When did the Lavra funicular open?", k=1)[0]
    assert hit.source == "report.pdf" and hit.page is not None
    document = parse((docs / "report.pdf").read_bytes(), "report.pdf")
    assert document.text[hit.start:hit.end] == hit.text
    assert document.page_at(document.text.index("Lavra")) == 2
    assert hit.page == document.page_at(hit.start)

    memo = index.retrieve("What does the Santa Justa lift connect?", k=1)[0]
    assert memo.source == "memo.docx" and memo.page is None


def test_changed_chunk_settings_need_rebuild(seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    with pytest.raises(qa.IndexMismatchError, match="chunks of 1500/215.*not 500/215.*--rebuild"):
        qa.build_index(seeds_copy, tmp_path / "index", chunk_size=500, progress=False)
    report = qa.build_index(seeds_copy, tmp_path / "index", chunk_size=500, rebuild=True, progress=False)
    assert report.chunks > chunk_count(SEED_ARTICLE)


def test_subfolders_keep_their_relative_source(tmp_path):
    docs = tmp_path / "docs"
    (docs / "trams").mkdir(parents=True)
    shutil.copy(FIXTURES / "lisbon-trams.md", docs / "trams" / "lisbon.md")
    qa.build_index(docs, tmp_path / "index", progress=False)
    assert qa.load(tmp_path / "index").retrieve("Line 28", k=1)[0].source == "trams/lisbon.md"


def test_rebuild_keeps_the_indexs_model_chunk_settings_and_vector_index(minilm_path, seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", model=str(minilm_path), chunk_size=600, chunk_overlap=60,
                   vector_index="ivf-sq8", progress=False)
    qa.build_index(seeds_copy, tmp_path / "index", rebuild=True, progress=False)
    stats = qa.load(tmp_path / "index").stats()
    manifest = IndexDirectory(tmp_path / "index").open_manifest()[1]
    assert (stats.dimension, manifest.chunking) == (384, {"size": 600, "overlap": 60})
    assert (stats.vector_index, manifest.vector_index["requested"]) == ("ivf-sq8", "ivf-sq8")
    assert stats.docs_dir == str(seeds_copy.resolve())


def test_an_older_format_index_is_rebuilt_with_its_own_model(minilm_path, seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", model=str(minilm_path), progress=False)
    age_index(tmp_path / "index", 1)
    with pytest.raises(qa.IndexFormatError, match="format 1.*--rebuild"):
        qa.load(tmp_path / "index")
    with pytest.raises(qa.IndexFormatError):  # an incremental build cannot reuse it either
        qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    report = qa.build_index(seeds_copy, tmp_path / "index", rebuild=True, progress=False)
    assert report.chunks_embedded == report.chunks > 0
    assert qa.load(tmp_path / "index").stats().dimension == 384  # MiniLM kept, not the bundled default


def test_embedding_shows_a_progress_bar_with_counts_and_eta(seeds_copy, tmp_path, capsys, monkeypatch):
    import qa.build.steps

    monkeypatch.setattr(qa.build.steps, "STEP_DISPLAY_DELAY", 0)  # show even the quick steps
    timings: dict[str, float] = {}
    qa.build_index(seeds_copy, tmp_path / "index", progress=True, timings=timings)
    bar = capsys.readouterr().err
    # tqdm: "Embedding 1 document: 100%|...| 3/3 [00:00<00:00, 5.6chunk/s]" (elapsed<remaining)
    # (a rate below one chunk a second, on a busy machine, reads "s/chunk")
    assert re.search(r"Embedding 1 document: .*\b(\d+)/\1 \[\d\d:\d\d<\d\d:\d\d, .*(chunk/s|s/chunk)\]", bar), bar
    # the steps without counts of their own are named as they run, in order (the app shows them)
    steps = ["Checking the index", "Reading the documents folder", "Writing the passages", "Writing the vector index",
             "Writing the ranking rows", "Saving the new version (checksums)", "Removing old versions"]
    shown = [re.search(re.escape(step) + r": \d\d:\d\d", bar) for step in steps]
    assert all(shown), [step for step, found in zip(steps, shown) if not found]
    assert [bar.index(step) for step in steps] == sorted(bar.index(step) for step in steps)
    assert bar.index("Writing the ranking rows") < bar.index("Finding translations of known words")
    # the same steps, and those with bars of their own, are timed (the hook bench/update_cost.py reads)
    assert set(steps) | {"Embedding", "Encoding new words", "Finding translations"} <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values())


def test_a_build_that_fails_at_once_prints_only_its_error(tmp_path, capsys):
    with pytest.raises(qa.DocumentError, match="documents folder not found"):
        qa.build_index(tmp_path / "nowhere", tmp_path / "index", progress=True)
    assert capsys.readouterr().err == ""


def test_a_one_file_update_searches_the_translations_of_its_new_words_only(seeds_copy, tmp_path):
    import sqlite3

    from qa.text import lexical
    from qa.build.neighbours import store_neighbours
    from qa.store.vocabulary import Vocabulary
    from qa.encode.base import word_table

    index_dir = tmp_path / "index"
    first = qa.build_index(seeds_copy, index_dir, progress=False)
    assert first.words_searched > 55_000  # a new index: its words and the encoder's whole words
    generation = IndexDirectory(index_dir).current_generation()
    known = set(Vocabulary(index_dir / generation).ids(lexical.words(NEW_DOC)))
    (seeds_copy / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    added = qa.build_index(seeds_copy, index_dir, progress=False)
    new_words = set(lexical.words(NEW_DOC)) - known
    assert 0 < added.words_searched == len(new_words)  # bounded by the file's own new words

    # the updated table is what searching every word again finds
    folder = index_dir / IndexDirectory(index_dir).current_generation()
    again = tmp_path / "again"
    shutil.copytree(folder, again)
    (again / "word_neighbours.sqlite").unlink()
    store_neighbours(again, word_table(qa.load(index_dir).embedder))

    def rows(path):
        with sqlite3.connect(path / "word_neighbours.sqlite") as connection:
            return dict((w, (i, c)) for w, i, c in connection.execute("SELECT word, ids, cosines FROM neighbours"))

    assert rows(folder) == rows(again)
    # removing a file searches nothing: the words of its chunks are left out at query time
    (seeds_copy / "valparaiso.txt").unlink()
    removed = qa.build_index(seeds_copy, index_dir, progress=False)
    assert removed.removed == 1 and removed.words_searched == 0


def test_open_or_build_builds_a_missing_index_and_rebuilds_an_older_one(seeds_copy, tmp_path):
    from qa.api import open_or_build

    said: list[str] = []
    index, report = open_or_build(seeds_copy, tmp_path / "index", say=said.append, progress=False)
    assert report is not None and report.chunks_embedded == report.chunks > 0
    assert said == [f"No index at {tmp_path / 'index'}: building it from {seeds_copy} ..."]
    assert index.retrieve("Who supplied drones to Russia?", k=1)
    again, report = open_or_build(seeds_copy, tmp_path / "index", say=said.append, progress=False)
    assert report is None and len(said) == 1  # an index of this format is opened as it is
    age_index(tmp_path / "index", 1)
    rebuilt, report = open_or_build(seeds_copy, tmp_path / "index", say=said.append, progress=False)
    assert report is not None and report.chunks_embedded == report.chunks > 0
    assert said[-1].endswith(f"has index format 1, this qa reads format {FORMAT_VERSION}: rebuilding it from {seeds_copy} ...")
    assert rebuilt.stats().chunks == report.chunks
    empty = tmp_path / "new-docs"
    _, report = open_or_build(empty, tmp_path / "index-2", say=said.append, progress=False)
    assert empty.is_dir() and report.documents == 0
    assert said[-2] == f"Created an empty documents folder {empty}: add files there or upload them in the app."


def _settle() -> None:
    """Wait until files written now are old enough for their stamps to be trusted
    (qa.ingest.documents._SETTLED_SECONDS)."""
    import time

    time.sleep(2.2)


def test_an_unchanged_file_is_not_read_again(tmp_path, monkeypatch):
    import qa.build.builder as builder

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEED_ARTICLE, docs / "seed.txt")
    shutil.copy(FIXTURES / "schwebebahn.txt", docs / "schwebebahn.txt")
    _settle()
    qa.build_index(docs, tmp_path / "index", progress=False)
    generation = IndexDirectory(tmp_path / "index").current_generation()
    read = []
    real_read = builder.read_bytes
    monkeypatch.setattr(builder, "read_bytes", lambda file: read.append(file.source) or real_read(file))

    report = qa.build_index(docs, tmp_path / "index", progress=False)
    assert (report.unchanged, report.chunks_embedded, read) == (2, 0, [])  # both known by their stamps

    (docs / "seed.txt").touch()  # new times, same content: read once, still unchanged
    _settle()
    report = qa.build_index(docs, tmp_path / "index", progress=False)
    assert (report.unchanged, report.chunks_embedded, read) == (2, 0, ["seed.txt"])
    assert IndexDirectory(tmp_path / "index").current_generation() == generation  # nothing to commit


def test_a_rewrite_of_the_same_size_with_its_old_modification_time_is_still_a_change(tmp_path):
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / "note.txt"
    path.write_text("El puerto de Valparaíso abrió un muelle nuevo en 2019.\n", encoding="utf-8")
    _settle()
    qa.build_index(docs, tmp_path / "index", progress=False)
    before = path.stat()

    # at once (too recent for a stamp), then again after settling: the change time differs
    for wait in (False, True):
        year = "2020" if not wait else "2021"
        path.write_text(f"El puerto de Valparaíso abrió un muelle nuevo en {year}.\n", encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
        if wait:
            _settle()
        report = qa.build_index(docs, tmp_path / "index", progress=False)
        assert (report.changed, report.chunks_embedded) == (1, 1)
        assert year in qa.load(tmp_path / "index").retrieve("When did Valparaíso open a new pier?", k=1)[0].text


def test_only_the_named_files_and_folders_are_looked_at_and_updated(tmp_path, monkeypatch):
    import qa.ingest.documents as documents

    docs = tmp_path / "docs"
    (docs / "archive").mkdir(parents=True)
    shutil.copy(SEED_ARTICLE, docs / "seed.txt")
    shutil.copy(FIXTURES / "schwebebahn.txt", docs / "archive" / "schwebebahn.txt")
    qa.build_index(docs, tmp_path / "index", progress=False)
    looked_at = []
    real_status = documents._status_or_reason
    monkeypatch.setattr(documents, "_status_or_reason",
                        lambda entry, *rest: looked_at.append(entry.name) or real_status(entry, *rest))
    # nor are the other documents' entries read (the index's table of them; on this small index
    # the changes would pass COMPACT_SHARE of the documents at once, and all be written again)
    monkeypatch.setattr(document_table, "COMPACT_SHARE", 1.0)
    monkeypatch.setattr(DocumentTable, "all", lambda table: pytest.fail("a named update read every document"))
    monkeypatch.setattr(DocumentTable, "__iter__", lambda table: pytest.fail("a named update listed every document"))

    (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    (docs / "seed.txt").write_text("Texto cambiado que nadie nombró.\n", encoding="utf-8")  # not named: not seen
    report = qa.build_index(docs, tmp_path / "index", progress=False, only=[docs / "valparaiso.txt"])
    assert (report.added, report.changed, report.removed, report.unchanged, report.documents) == (1, 0, 0, 0, 3)
    assert looked_at == ["valparaiso.txt"]  # one file's status, not the folder's
    index = qa.load(tmp_path / "index")
    assert "1883" in index.retrieve("When were the funiculars of Valparaíso built?", k=1)[0].text
    assert any("drones" in hit.text for hit in index.retrieve("Who supplied drones to Russia?", k=3))

    # a named folder whose file is gone: its document is removed; a path outside is refused
    (docs / "archive" / "schwebebahn.txt").unlink()
    report = qa.build_index(docs, tmp_path / "index", progress=False, only=[docs / "archive"])
    assert [(c.source, c.status) for c in report.changes] == [("archive/schwebebahn.txt", "removed")]
    with pytest.raises(qa.DocumentError, match=re.escape(f"{tmp_path / 'elsewhere.txt'} is not inside")):
        qa.build_index(docs, tmp_path / "index", progress=False, only=[tmp_path / "elsewhere.txt"])

    # naming the folder itself is a whole update: the unnamed change is found now
    monkeypatch.undo()
    report = qa.build_index(docs, tmp_path / "index", progress=False, only=[docs])
    assert [(c.source, c.status) for c in report.changes] == [("seed.txt", "changed")]


def test_cli_only_updates_the_named_file(seeds_copy, tmp_path):
    from click.testing import CliRunner

    from qa.cli import cli

    index_dir = tmp_path / "index"
    qa.build_index(seeds_copy, index_dir, progress=False)
    (seeds_copy / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(seeds_copy), "--index-dir", str(index_dir), "--quiet",
                                 "--only", str(seeds_copy / "valparaiso.txt")])
    assert result.exit_code == 0, result.output
    assert "   added  valparaiso.txt" in result.output and "1 added, 0 changed, 0 removed, 0 unchanged" in result.output
    refused = runner.invoke(cli, ["index", str(seeds_copy), "--index-dir", str(index_dir), "--rebuild",
                                  "--only", str(seeds_copy / "valparaiso.txt")])
    assert refused.exit_code == 2 and "--only updates some files; --rebuild" in refused.output
