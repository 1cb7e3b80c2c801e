"""Uploaded files land inside the documents folder, cleaned, limited, never overwriting."""

from __future__ import annotations

import pytest

from qa.ingest.uploads import add_uploads, clean_filename


@pytest.mark.parametrize("sent,clean", [
    ("../../evil.txt", "evil.txt"),
    ("/etc/passwd.md", "passwd.md"),
    ("C:\\Users\\x\\notes.TXT", "notes.txt"),
    ("..\\..\\up.md", "up.md"),
    (".hidden.txt", "hidden.txt"),
    ("informe año 2023 (final).pdf", "informe año 2023 (final).pdf"),
    ("a<b>|c;rm -rf.txt", "a_b__c_rm -rf.txt"),
    ("line\nbreak\x00.txt", "linebreak.txt"),
    ("..", ""),
    ("x" * 300 + ".txt", "x" * 116 + ".txt"),
])
def test_clean_filename(sent, clean):
    assert clean_filename(sent) == clean


def upload(tmp_path, name: str, data: bytes):
    temp = tmp_path / "incoming" / f"{len(list((tmp_path).glob('incoming/*')))}.bin"
    temp.parent.mkdir(exist_ok=True)
    temp.write_bytes(data)
    return name, temp


def test_traversal_names_land_inside_the_folder(tmp_path):
    docs = tmp_path / "docs"
    results = add_uploads(docs, [upload(tmp_path, "../../evil.txt", b"text")])
    assert results[0].saved == "evil.txt"
    assert (docs / "evil.txt").read_bytes() == b"text"
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_unsupported_empty_and_oversized_files_are_refused(tmp_path):
    docs = tmp_path / "docs"
    results = add_uploads(docs, [
        upload(tmp_path, "tool.exe", b"MZ"),
        upload(tmp_path, "empty.txt", b""),
        upload(tmp_path, "big.txt", b"x" * 101),
    ], max_file_bytes=100)
    assert [r.saved for r in results] == [None, None, None]
    assert "unsupported file type '.exe'" in results[0].message
    assert "empty file" in results[1].message
    assert "101 bytes is over the 100 limit" in results[2].message
    assert list(docs.iterdir()) == []


def test_an_existing_document_is_never_overwritten(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_bytes(b"original")
    results = add_uploads(docs, [upload(tmp_path, "report.txt", b"new content"),
                                 upload(tmp_path, "report.txt", b"original")])
    assert (docs / "report.txt").read_bytes() == b"original"
    assert results[0].saved == "report (2).txt" and (docs / "report (2).txt").read_bytes() == b"new content"
    assert "a different report.txt exists" in results[0].message
    assert results[1].saved == "report.txt" and "already in the documents folder" in results[1].message
