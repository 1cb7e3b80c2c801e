"""Crash safety, damaged indexes, hostile documents and concurrent use, end to end."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

import qa
from qa.cli import cli
from qa.store.folder import CURRENT_FILE, IndexDirectory

from conftest import REPO, SEED_ARTICLE
from test_documents import make_pdf

SEED_TEXT = SEED_ARTICLE.read_text(encoding="utf-8")


def corpus(folder: Path, prefix: str, copies: int) -> Path:
    """The seed article plus ``copies`` variants of it (distinct content, so each is embedded)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED_ARTICLE, folder)
    for i in range(copies):
        (folder / f"{prefix}-{i:02d}.txt").write_text(f"{SEED_TEXT}\n\nCopia {prefix} número {i}.\n", encoding="utf-8")
    return folder


def qa_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300, **kwargs)


@pytest.mark.slow
def test_kill_9_at_any_point_of_a_rebuild_leaves_a_complete_index(tmp_path):
    docs = corpus(tmp_path / "docs", "doc", 24)
    index_dir = tmp_path / "index"
    first = qa.build_index(docs, index_dir, progress=False)
    rebuild = [sys.executable, "-m", "qa.cli", "index", str(docs), "--index-dir", str(index_dir), "--rebuild", "--quiet"]
    started = time.monotonic()
    subprocess.run(rebuild, check=True, cwd=REPO, capture_output=True)
    full_run = time.monotonic() - started

    runs = 20
    # kill points spread from process start to past the end of a typical run
    delays = [full_run * 1.3 * i / (runs - 2) for i in range(runs - 1)] + [full_run * 3]
    committed = 0
    for delay in delays:
        before = IndexDirectory(index_dir).current_generation()
        process = subprocess.Popen(rebuild, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.kill()
        process.wait()
        committed += IndexDirectory(index_dir).current_generation() != before

        result = CliRunner().invoke(cli, ["search", "drones de Irán", "-k", "3", "--index-dir", str(index_dir), "--json"])
        assert result.exit_code == 0, result.output
        assert "drones de Irán" in json.loads(result.stdout)[0]["text"]
        stats = qa.load(index_dir).stats()
        assert (stats.documents, stats.chunks) == (first.documents, first.chunks)
    assert 0 < committed < runs, "kill points should fall both before and after the commit"

    # the next writer removes what the killed ones left behind
    qa.build_index(docs, index_dir, progress=False)
    leftovers = [p.name for p in index_dir.iterdir() if p.name.startswith((".tmp-", f"{CURRENT_FILE}."))]
    assert leftovers == []
    assert len([p for p in index_dir.iterdir() if p.name.startswith("gen-")]) == 1


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # flip one bit in the middle of the file
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:])


def index_files(index_dir: Path) -> list[Path]:
    generation = IndexDirectory(index_dir).current_generation()
    return [index_dir / CURRENT_FILE, *sorted(p for p in (index_dir / generation).rglob("*") if p.is_file())]


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_each_damaged_index_file_is_one_clear_error(seed_index, tmp_path, how):
    for number, original in enumerate(index_files(seed_index)):
        copy = tmp_path / f"copy-{number}"  # a name that cannot satisfy the assertion by itself
        shutil.copytree(seed_index, copy)
        damaged = copy / original.relative_to(seed_index)
        damage(damaged, how)
        result = qa_cli("search", "drones", "--index-dir", str(copy))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (damaged.name, result.returncode, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert damaged.name in lines[0] and "qa index --rebuild" in lines[0], lines[0]


def test_manifest_and_vector_count_mismatch_is_detected(seed_index, tmp_path):
    import hashlib

    copy = tmp_path / "index"
    shutil.copytree(seed_index, copy)
    generation = IndexDirectory(copy).current_generation()
    manifest_path = copy / generation / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["chunks"] += 1
    data = json.dumps(manifest).encode()
    manifest_path.write_bytes(data)
    (copy / CURRENT_FILE).write_text(json.dumps({"generation": generation,
                                                 "manifest_sha256": hashlib.sha256(data).hexdigest()}))
    with pytest.raises(qa.IndexCorruptError, match="inconsistent .*qa index --rebuild"):
        qa.load(copy)


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret plans."]))))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_folder_of_bad_files_indexes_the_good_one_and_names_the_rest(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEED_ARTICLE, docs)
    outside = tmp_path / "outside.txt"
    outside.write_text("a file outside the documents folder", encoding="utf-8")
    bad = {
        "empty.txt": b"",
        "binary.txt": b"\x00\x01\x02ELF" + os.urandom(300),
        "broken-utf8.md": "Rusia e Irán ".encode() + b"\xc3\x28 invalid",
        "malformed.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> trailer",
        "encrypted.pdf": encrypted_pdf(),
        "zero.docx": b"",
        "corrupt.docx": b"PK\x03\x04" + os.urandom(100),
        "huge.txt": b"drones " * 200_000,
        "program.exe": b"MZ\x90\x00",
    }
    for name, data in bad.items():
        (docs / name).write_bytes(data)
    (docs / "escape.txt").symlink_to(outside)

    result = qa_cli("index", str(docs), "--index-dir", str(tmp_path / "index"), "--json", "--max-file-size", "1000000")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    reasons = {item["source"]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == set(bad) | {"escape.txt"}
    expected = {
        "empty.txt": "empty file", "binary.txt": "binary data", "broken-utf8.md": "invalid UTF-8",
        "malformed.pdf": "malformed PDF", "encrypted.pdf": "encrypted PDF", "zero.docx": "empty file",
        "corrupt.docx": "not a valid DOCX", "huge.txt": "too large", "program.exe": "unsupported file type",
        "escape.txt": "outside the documents folder",
    }
    for name, reason in expected.items():
        assert reason in reasons[name], (name, reasons[name])
        assert "\n" not in reasons[name]
    assert report["added"] == 1
    hits = qa.load(tmp_path / "index").retrieve("¿Quién suministró drones a Rusia?", k=1)
    assert hits[0].source == SEED_ARTICLE.name


def test_queries_during_a_rebuild_each_come_from_one_whole_index(tmp_path):
    docs = corpus(tmp_path / "docs", "alpha", 6)
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    old_sources = {p.name for p in docs.iterdir()}
    for path in docs.glob("alpha-*"):
        path.unlink()
    corpus(docs, "beta", 6)
    new_sources = {p.name for p in docs.iterdir()}

    index = qa.load(index_dir)
    question = "¿Quién suministró drones a Rusia?"
    writer = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", str(docs), "--index-dir", str(index_dir),
                               "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        while writer.poll() is None or len(results) < 50:
            results.extend(pool.map(lambda _: index.retrieve(question, k=10), range(8)))
        after = list(pool.map(lambda _: index.retrieve(question, k=10), range(8)))
    assert writer.returncode == 0, writer.stderr.read()

    for hits in results + after:
        sources = {h.source for h in hits}
        assert sources <= old_sources or sources <= new_sources, sources
    # once the rebuild is done, the same Index answers from the new generation, no restart
    assert all({h.source for h in hits} <= new_sources for hits in after)
    assert {d.source for d in index.documents()} == new_sources


def test_readers_loading_in_a_loop_during_rebuilds_and_updates_never_fail(tmp_path):
    # The long run (>= 5,000 loads during >= 20 updates) is bench/reader_loop.py; this one
    # is shorter but swaps generations under the reader in both kinds of build.
    sys.path.insert(0, str(REPO / "bench"))
    from reader_loop import prepare, reader_loop

    docs, index_dir = prepare(tmp_path)
    result = reader_loop(docs, index_dir, updates=8, min_loads=300)
    assert result.failures == 0, result.errors
    assert result.loads >= 300 and result.generations_seen >= 3  # the reader did follow the writer


def test_an_open_index_keeps_its_generation_until_it_reloads(tmp_path):
    docs = corpus(tmp_path / "docs", "doc", 1)
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, progress=False)
    index = qa.load(index_dir)
    first = index.snapshot().name
    (docs / "new.txt").write_text("Los drones llegaron desde Irán en otoño.\n", encoding="utf-8")
    qa.build_index(docs, index_dir, progress=False)
    # the build could not remove the generation the open index holds
    assert (index_dir / first / "manifest.json").exists()
    assert {h.source for h in index.retrieve("drones de Irán", k=10)} >= {"new.txt"}  # it reloaded
    assert index.snapshot().name != first
    (docs / "new.txt").unlink()
    qa.build_index(docs, index_dir, progress=False)
    assert not (index_dir / first).exists()  # nobody uses it any more: the next build removed it


def test_a_file_missing_from_the_live_generation_is_still_reported_as_damage(seed_index, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(seed_index, copy)
    generation = IndexDirectory(copy).current_generation()
    segment = next((copy / generation).glob("seg-*")).name
    for name in ("vectors.faiss", "chunks.sqlite"):
        damaged = tmp_path / f"damaged-{name}"
        shutil.copytree(copy, damaged)
        (damaged / generation / segment / name).unlink()
        with pytest.raises(qa.IndexCorruptError, match=f"{name} is missing; run `qa index --rebuild`"):
            qa.load(damaged)


def test_the_package_never_unpickles_or_trusts_remote_code():
    sources = list((REPO / "qa").rglob("*.py")) + [p for p in [REPO / "app.py"] if p.exists()]
    assert sources
    offenders = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for pattern in (r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", r"allow_pickle\s*=\s*True",
                        r"trust_remote_code\s*=\s*True", r"torch\.load\("):
            if re.search(pattern, text, re.MULTILINE):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []
