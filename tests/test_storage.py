"""Generations, atomic commits, verification on open and the writer lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import age_index
from qa.errors import IndexCorruptError, IndexFormatError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from qa.store.document_table import DocumentDict
from qa.store.manifest import Manifest
from qa.store.folder import CURRENT_FILE, IndexDirectory


def manifest() -> Manifest:
    return Manifest(embedder={"id": "e", "model": "e", "dimension": 3}, chunking={"size": 1000, "overlap": 143},
                    vector_index={"type": "flat"}, documents=DocumentDict(), chunks=0, docs_dir="/docs", built_at="now")


def commit(directory: IndexDirectory, payload: bytes = b"data") -> str:
    workspace = directory.new_workspace()
    (workspace / "data.bin").write_bytes(payload)
    return directory.commit(workspace, manifest())


def test_commit_makes_a_verified_generation_current(tmp_path):
    directory = IndexDirectory(tmp_path / "index")
    assert directory.current_generation() is None
    first = commit(directory, b"one")
    second = commit(directory, b"two")
    assert directory.current_generation() == second != first
    name, loaded = directory.open_manifest()
    assert name == second and loaded.files["data.bin"].bytes == 3


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexNotFoundError, match="qa index DOCS_DIR --index-dir"):
        IndexDirectory(tmp_path / "none").open_manifest()


def test_stale_workspaces_and_old_generations_are_removed(tmp_path):
    directory = IndexDirectory(tmp_path / "index")
    old = commit(directory)
    live = commit(directory)
    leftover = directory.new_workspace()  # as if a build was killed
    directory.remove_stale()
    names = sorted(p.name for p in directory.path.iterdir())
    assert live in names and old not in names and leftover.name not in names


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_data_file_is_named_on_open(tmp_path, damage):
    directory = IndexDirectory(tmp_path / "index")
    name = commit(directory, b"0123456789")
    path = directory.generation_path(name) / "data.bin"
    if damage == "truncate":
        path.write_bytes(b"01234")
    elif damage == "flip":
        path.write_bytes(b"0123456780")
    else:
        path.unlink()
    with pytest.raises(IndexCorruptError, match=r"data\.bin.*qa index --rebuild"):
        directory.open_manifest()


def test_an_altered_manifest_or_pointer_is_detected(tmp_path):
    directory = IndexDirectory(tmp_path / "index")
    name = commit(directory)
    manifest_path = directory.generation_path(name) / "manifest.json"
    manifest_path.write_text(manifest_path.read_text().replace('"now"', '"then"'))
    with pytest.raises(IndexCorruptError, match="manifest.json does not match the checksum in .*CURRENT"):
        directory.open_manifest()
    (directory.path / CURRENT_FILE).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="CURRENT is damaged"):
        directory.open_manifest()


def test_another_format_version_says_how_to_rebuild(tmp_path):
    directory = IndexDirectory(tmp_path / "index")
    commit(directory)
    age_index(directory.path, 99)
    with pytest.raises(IndexFormatError, match="format 99.*qa index --rebuild") as raised:
        directory.open_manifest()
    assert isinstance(raised.value, IndexMismatchError)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    index = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from qa.store.folder import IndexDirectory
        with IndexDirectory({str(index)!r}).write_lock():
            print("locked", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"pid {holder.pid}"):
            with IndexDirectory(index).write_lock(timeout=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the next writer gets it at once
    with IndexDirectory(index).write_lock(timeout=0):
        assert (index / ".lock").read_text().strip() == str(os.getpid())


def test_large_files_are_sampled_on_open_and_fully_checked_on_demand(tmp_path, monkeypatch):
    import qa.store.folder

    monkeypatch.setattr(qa.store.folder, "FULL_CHECK_MAX_BYTES", 1 << 10)
    directory = IndexDirectory(tmp_path / "index")
    payload = bytearray(os.urandom(8 << 20))
    generation = commit(directory, bytes(payload))
    data = directory.generation_path(generation) / "data.bin"

    payload[(4 << 20) + 100] ^= 1  # between two sampled blocks: only the full check sees it
    data.write_bytes(bytes(payload))
    assert directory.open_manifest(full=False)[0] == generation
    with pytest.raises(IndexCorruptError, match="data.bin does not match its checksum"):
        directory.open_manifest(full=True)

    payload[10] ^= 1  # in the first block, where headers live
    data.write_bytes(bytes(payload))
    with pytest.raises(IndexCorruptError, match="data.bin does not match its checksum"):
        directory.open_manifest(full=False)


def test_a_documents_table_keeps_an_updates_changes_beside_the_linked_full_table(tmp_path, monkeypatch):
    from qa.store import document_table
    from qa.store.document_table import (DOCUMENT_CHANGES_FILE, DOCUMENTS_FILE, DocumentChanges, DocumentTable,
                                         write_documents)
    from qa.types import IndexedDocument

    def doc(source, doc_id, container=None):
        return IndexedDocument(source, doc_id, 2, 10, "now", container=container, file_stamp="1:2:3:4")

    def written(name, documents):
        folder = tmp_path / name
        folder.mkdir()
        write_documents(folder, documents)
        return DocumentTable(folder, len(documents)).open()

    first = {d.source: d for d in [doc("a.txt", "x"), doc("b/c.txt", "y"), doc("b/d.eml", "z"),
                                   doc("b/d.eml › e.pdf", "w", container="b/d.eml"), doc("bé/ñ.txt", "x")]}
    table = written("one", DocumentDict(first))
    assert table.all() == first and list(table) == sorted(first) and len(table) == 5
    assert list(table.all(limit=2)) == ["a.txt", "b/c.txt"] and list(DocumentDict(first).all(limit=2)) == ["a.txt", "b/c.txt"]
    assert table["b/c.txt"] == first["b/c.txt"] and "nope" not in table
    assert table.sources_of(["x", "w", "gone"]) == {"x": ["a.txt", "bé/ñ.txt"], "w": ["b/d.eml › e.pdf"]}
    assert list(table.attached_to("b/d.eml")) == ["b/d.eml › e.pdf"]
    assert list(table.within("b/")) == ["b/c.txt", "b/d.eml", "b/d.eml › e.pdf"] and list(table.within("bé/")) == ["bé/ñ.txt"]

    monkeypatch.setattr(document_table, "COMPACT_SHARE", 1.0)  # small tables: keep the changes apart
    changes = DocumentChanges(table, {"a.txt": doc("a.txt", "v"), "f.txt": doc("f.txt", "y")}, ["b/c.txt"])
    assert len(changes) == 5 and changes.sources_of(["x", "y", "v"]) == {"x": ["bé/ñ.txt"], "y": ["f.txt"], "v": ["a.txt"]}
    after = written("two", changes)
    assert (tmp_path / "two" / DOCUMENTS_FILE).stat().st_ino == (tmp_path / "one" / DOCUMENTS_FILE).stat().st_ino
    assert after.changes() == ({"a.txt": doc("a.txt", "v"), "f.txt": doc("f.txt", "y")}, {"a.txt", "b/c.txt"})
    assert after.all() == changes.all() and list(after) == ["a.txt", "b/d.eml", "b/d.eml › e.pdf", "bé/ñ.txt", "f.txt"]
    assert after["a.txt"].doc_id == "v" and "b/c.txt" not in after and table["a.txt"].doc_id == "x"
    assert after.holding(["a.txt", "b/c.txt", "f.txt", "zz"]) == {"a.txt", "f.txt"}
    assert after.sources_of(["x", "y", "v"]) == {"x": ["bé/ñ.txt"], "y": ["f.txt"], "v": ["a.txt"]}
    assert list(after.within("b/")) == ["b/d.eml", "b/d.eml › e.pdf"] and list(after.within("f")) == ["f.txt"]

    # the changes add up (a name added since the full table and removed again leaves no trace) ...
    third = written("three", DocumentChanges(after, {"b/c.txt": doc("b/c.txt", "u")}, ["f.txt"]))
    assert third.changes() == ({"a.txt": doc("a.txt", "v"), "b/c.txt": doc("b/c.txt", "u")}, {"a.txt", "b/c.txt"})
    assert list(third) == ["a.txt", "b/c.txt", "b/d.eml", "b/d.eml › e.pdf", "bé/ñ.txt"] and third["b/c.txt"].doc_id == "u"
    # ... until they pass COMPACT_SHARE of the documents: then the full table is written again
    monkeypatch.setattr(document_table, "COMPACT_SHARE", 0.5)
    fourth = written("four", DocumentChanges(third, {"g.txt": doc("g.txt", "t")}, []))
    assert fourth.changes() == ({}, set()) and fourth.all() == {**third.all(), "g.txt": doc("g.txt", "t")}
    assert (tmp_path / "four" / DOCUMENTS_FILE).stat().st_ino != (tmp_path / "one" / DOCUMENTS_FILE).stat().st_ino
    assert (tmp_path / "four" / DOCUMENT_CHANGES_FILE).is_file()
