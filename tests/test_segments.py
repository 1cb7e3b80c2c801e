"""Generations of segments (qa/store/segments.py): an update writes what changed, links the
rest, and retrieves what a fresh build of the same documents retrieves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.build import artifacts
from qa.eval.benchmark import DEFAULT_DATA_DIR, read_articles
from qa.store.folder import IndexDirectory
from qa.store.segments import SegmentedVectors
from qa.store.vectors.flat import FlatIndex

from test_indexing import NEW_DOC, _settle

QUESTIONS = ["¿Quién suministró drones a Rusia?", "Valparaíso ascensores cerros", "¿Cuándo se fundó la universidad?",
             "What did the UNESCO declare?", "temperatura del océano", "¿Qué ciudad tiene un puerto?"]


def paragraphs(count: int, first: int = 0) -> list[str]:
    """``count`` paragraphs of the Spanish XQuAD-R articles: real text, about one chunk each."""
    texts = [p["context"] for a in read_articles(DEFAULT_DATA_DIR, "es") for p in a["paragraphs"]]
    return texts[first:first + count]


def write_docs(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"p{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


def live_folder(index_dir: Path) -> Path:
    directory = IndexDirectory(index_dir)
    return directory.generation_path(directory.current_generation())


def manifest(index_dir: Path) -> dict:
    return json.loads((live_folder(index_dir) / "manifest.json").read_text(encoding="utf-8"))


def files(folder: Path) -> dict[str, os.stat_result]:
    return {p.relative_to(folder).as_posix(): p.stat() for p in folder.rglob("*") if p.is_file()}


def written_by_update(index_dir: Path, docs: Path) -> dict[str, int]:
    """Build ``docs`` into ``index_dir`` and return the new generation's files that are not the
    previous generation's (hard links of it are the same inode), with their bytes."""
    before = {(s.st_dev, s.st_ino) for s in files(live_folder(index_dir)).values()}
    hashed: list[str] = []
    real_sha256 = qa.store.folder.sha256_file
    qa.store.folder.sha256_file = lambda path: hashed.append(path.name) or real_sha256(path)
    try:
        qa.build_index(docs, index_dir, progress=False)
    finally:
        qa.store.folder.sha256_file = real_sha256
    after = files(live_folder(index_dir))
    written = {name: s.st_size for name, s in after.items() if (s.st_dev, s.st_ino) not in before}
    assert sorted(hashed) == sorted(Path(name).name for name in written if name != "manifest.json")
    return written


def test_a_one_document_add_writes_and_hashes_that_document_whatever_the_index_size(tmp_path):
    """The update's per-row work (files written and hashed, rows written) is the added
    document's in an index of 24 and of 96 chunks alike; the previous segment is linked."""
    per_row: dict[int, dict[str, int]] = {}
    for size in (24, 96):
        docs = write_docs(tmp_path / f"docs-{size}", paragraphs(size))
        _settle()  # else the update records the files' stamps, too recent at the first build
        index_dir = tmp_path / f"index-{size}"
        qa.build_index(docs, index_dir, progress=False)
        base = manifest(index_dir)["segments"]
        assert len(base) == 1 and base[0]["rows"] >= size
        (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
        written = written_by_update(index_dir, docs)
        after = manifest(index_dir)
        assert after["segments"][0] == base[0]  # linked, not rewritten
        new = after["segments"][1]
        assert len(after["segments"]) == 2 and new["rows"] == 1 and new["vector_index"]["type"] == "flat"
        assert not [name for name in written if name.startswith(base[0]["name"] + "/")]
        per_row[size] = {name.split("/", 1)[1]: bytes for name, bytes in written.items() if name.startswith("seg-")}
        # what else is written are the per-word tables, the statistics and the documents' changes
        # (the full table of documents is linked), not per-row files
        assert {name for name in written if not name.startswith("seg-")} <= {
            "manifest.json", "deleted.npy", "lexical.json", "ngram_df.npy", "word_df.npy", "vocabulary.sqlite",
            "word_vectors_recent.npy", "word_neighbours.sqlite", "documents_changes.sqlite"}
        assert "valparaiso.txt" in {h.source for h in qa.load(index_dir).retrieve("Valparaíso ascensores", k=3)}
    assert per_row[24] == per_row[96]  # the same files of the same bytes: the document's own rows


def test_retrieval_after_updates_equals_a_fresh_build(tmp_path, monkeypatch):
    """Adds, changes and removals in linked segments with deleted rows, then merges of the
    later segments and a full compaction: each time the same passages and scores as a fresh
    build of the same folder, and the same statistics."""
    monkeypatch.setattr(artifacts, "COMPACT_SHARE", 0.5)  # keep several segments on a small index
    monkeypatch.setattr(artifacts, "MAX_SEGMENTS", 3)
    docs = write_docs(tmp_path / "docs", paragraphs(30))
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    extra = paragraphs(6, first=100)
    steps = [
        lambda: (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8"),
        lambda: (docs / "p003.txt").write_text(extra[0], encoding="utf-8"),  # changed
        lambda: (docs / "p007.txt").unlink(),  # removed
        lambda: (docs / "copy-of-p010.txt").write_text((docs / "p010.txt").read_text(encoding="utf-8"),
                                                       encoding="utf-8"),  # known content: nothing embedded
        lambda: [(docs / f"more-{i}.txt").write_text(t, encoding="utf-8") for i, t in enumerate(extra[1:3])],
    ]
    plans = []
    for number, step in enumerate(steps):
        step()
        qa.build_index(docs, index_dir, progress=False)
        plans.append(len(manifest(index_dir)["segments"]))
        fresh = tmp_path / f"fresh-{number}"
        qa.build_index(docs, fresh, progress=False)
        assert_same_retrieval(index_dir, fresh)
    assert max(plans) == 3 and manifest(index_dir)["deleted"] > 0  # later segments and deleted rows were read
    monkeypatch.setattr(artifacts, "COMPACT_SHARE", 0.01)  # the next update merges everything
    (docs / "p020.txt").unlink()
    qa.build_index(docs, index_dir, progress=False)
    compacted = manifest(index_dir)
    assert len(compacted["segments"]) == 1 and compacted["deleted"] == 0
    fresh = tmp_path / "fresh-last"
    qa.build_index(docs, fresh, progress=False)
    assert_same_retrieval(index_dir, fresh)


def assert_same_retrieval(index_dir: Path, fresh: Path) -> None:
    updated, built = qa.load(index_dir), qa.load(fresh)
    assert updated.stats().chunks == built.stats().chunks
    for mode in ("hybrid", "dense"):
        for question in QUESTIONS:
            ours = updated.retrieve(question, k=8, mode=mode)
            theirs = built.retrieve(question, k=8, mode=mode)
            # the same passages with the same scores, up to the order of equal scores
            assert {h.chunk_id for h in ours} == {h.chunk_id for h in theirs}, (mode, question)
            assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-4), (mode, question)
            assert {h.chunk_id: h.source for h in ours} == {h.chunk_id: h.source for h in theirs}
    a, b = updated.snapshot().generation, built.snapshot().generation
    assert np.array_equal(a.rows.ngrams.df, b.rows.ngrams.df)
    assert (a.rows.words.rows, a.rows.words.total_length, a.rows.ngrams.total_length, a.rows.piece_total) == \
        (b.rows.words.rows, b.rows.words.total_length, b.rows.ngrams.total_length, b.rows.piece_total)
    words = lambda g: {w: int(g.rows.words.df[i]) for i, w in g.vocabulary.words(range(g.vocabulary.size)).items()
                       if g.rows.words.df[i]}
    assert words(a) == words(b)
    assert a.manifest.documents.keys() == b.manifest.documents.keys()
    assert {c.id for c in a.chunks.of_documents({d.doc_id for d in a.manifest.documents.values()})[1]} == \
        {c.id for c in b.chunks.of_documents({d.doc_id for d in b.manifest.documents.values()})[1]}
    assert sorted(h.chunk_id for h in updated.passages()) == sorted(h.chunk_id for h in built.passages())


def test_segmented_vectors_leave_deleted_rows_out_and_search_as_one_index():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    parts = [FlatIndex.build(vectors[:40], 16, "auto"), FlatIndex.build(vectors[40:], 16, "auto")]
    deleted = np.array([3, 17, 41, 59], dtype=np.int64)
    store = SegmentedVectors(parts, np.array([0, 40, 60]), deleted)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    live = np.setdiff1d(np.arange(60), deleted)
    scores, rows = store.search(queries, 10)
    exact = queries @ vectors[live].T
    expected = live[np.argsort(-exact, axis=1)[:, :10]]
    assert np.array_equal(rows, expected) and np.allclose(scores, np.sort(exact, axis=1)[:, ::-1][:, :10], atol=1e-5)
    assert store.size == 56 and store.search(queries, 100)[1].shape == (5, 56)
    among = np.array([3, 5, 41, 42], dtype=np.int64)  # two of them deleted
    _, rows = store.search(queries, 10, among=among)
    assert set(rows.ravel().tolist()) <= {5, 42, -1} and (rows[:, :2] >= 0).all()
    assert np.allclose(store.vectors(np.array([42, 1])), vectors[[42, 1]])


def test_a_rebuild_writes_one_segment_and_the_old_generation_folder_can_go(tmp_path, monkeypatch):
    """Linked files survive the removal of the generation they were first written in."""
    docs = write_docs(tmp_path / "docs", paragraphs(24))
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    first = live_folder(index_dir)
    (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    qa.build_index(docs, index_dir, progress=False)
    assert not first.exists()  # removed by the build: no reader held it
    assert len(manifest(index_dir)["segments"]) == 2
    assert "valparaiso.txt" in {h.source for h in qa.load(index_dir).retrieve("Valparaíso ascensores", k=3)}
    qa.build_index(docs, index_dir, progress=False, rebuild=True)
    assert len(manifest(index_dir)["segments"]) == 1 and manifest(index_dir)["deleted"] == 0


def test_damage_in_a_linked_segment_is_still_caught_and_never_merged(tmp_path, monkeypatch):
    """A linked file keeps the checksum it was written with: a bit flipped in it after its
    build is reported by readers of every later generation, and a merge refuses to read it."""
    docs = write_docs(tmp_path / "docs", paragraphs(24))
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    base = manifest(index_dir)["segments"][0]["name"]
    damaged = live_folder(index_dir) / base / "chunks.sqlite"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    qa.build_index(docs, index_dir, progress=False)  # links the segment, unread
    with pytest.raises(qa.IndexCorruptError, match=f"{base}/chunks.sqlite does not match its checksum"):
        qa.load(index_dir)
    monkeypatch.setattr(artifacts, "COMPACT_SHARE", 0.01)
    (docs / "p001.txt").unlink()
    before = live_folder(index_dir).name
    # the build reads the removed document's rows first: its texts are deflated with the
    # table's dictionary, so damage there may be caught before the merge's checksum check
    with pytest.raises(qa.IndexCorruptError,
                       match=f"{base}/chunks.sqlite (does not match its checksum|has no readable text dictionary)"):
        qa.build_index(docs, index_dir, progress=False)
    assert live_folder(index_dir).name == before


def test_a_reader_reopening_after_an_update_hashes_only_what_the_update_wrote(tmp_path, monkeypatch):
    """The segments an update links are the files the reader already verified (same inode,
    size and time): reopening hashes the update's own files, and a file changed since is
    hashed again and reported."""
    from qa.store import folder as folder_module

    monkeypatch.setattr(folder_module, "VERIFIED_SETTLE_SECONDS", -1.0)  # the files here are seconds old
    hashed: list[Path] = []
    real_sha256 = folder_module.sha256_file
    monkeypatch.setattr(folder_module, "sha256_file", lambda path: hashed.append(Path(path)) or real_sha256(path))
    docs = write_docs(tmp_path / "docs", paragraphs(24))
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    index = qa.load(index_dir)
    base = manifest(index_dir)["segments"][0]["name"]
    assert any(path.parent.name == base for path in hashed)
    (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    qa.build_index(docs, index_dir, progress=False)
    hashed.clear()
    assert "valparaiso.txt" in {h.source for h in index.retrieve("Valparaíso ascensores", k=3)}  # reopened
    new = manifest(index_dir)["segments"][-1]["name"]
    assert any(path.parent.name == new for path in hashed)
    assert not any(path.parent.name == base for path in hashed)
    damaged = live_folder(index_dir) / base / "chunks.sqlite"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(qa.IndexCorruptError, match=f"{base}/chunks.sqlite does not match its checksum"):
        qa.load(index_dir)


def test_a_reader_reopening_after_an_update_shares_the_segments_it_has_open(tmp_path):
    """The linked segment is not opened again: the new generation holds the very parts the
    old one has, and answers as a fresh build does."""
    docs = write_docs(tmp_path / "docs", paragraphs(24))
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    index = qa.load(index_dir)
    before = index.snapshot().generation
    (docs / "valparaiso.txt").write_text(NEW_DOC, encoding="utf-8")
    qa.build_index(docs, index_dir, progress=False)
    after = index.snapshot().generation
    assert after.name != before.name and len(after.segment_chunks) == 2
    assert after.segment_chunks[0] is before.segment_chunks[0]
    assert after.segment_vectors[0] is before.segment_vectors[0]
    fresh = tmp_path / "fresh"
    qa.build_index(docs, fresh, progress=False)
    assert_same_retrieval(index_dir, fresh)
