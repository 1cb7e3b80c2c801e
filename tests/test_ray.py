"""Building on Ray (``qa index --ray``): a local Ray cluster with two workers, started by these
tests on this machine and stopped after them, encodes with the real bundled encoder.

A generation built on Ray must equal one built in this process, a worker's failure must name
the file and leave the index answering from its previous generation, and without ``--ray``
nothing imports Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='the Ray tests need Ray: pip install -e ".[test,ray]"')

import qa  # noqa: E402
from qa.build.new_documents import NewDocument  # noqa: E402
from qa.errors import DocumentError  # noqa: E402
from qa.store.local import LocalGenerations  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = ["who supplied drones to Russia?", "¿Qué compró Rusia a Corea del Norte?",
             "When did the tram network open?", "Wann wurde die Schwebebahn gebaut?"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture()
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "corea.txt").write_text((REPO / "seeds" / "corea-del-norte-rusia-armas.txt").read_text(encoding="utf-8"),
                                      encoding="utf-8")
    for name in ("lisbon-trams.md", "schwebebahn.txt"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    return folder


def _generation(index: Path):
    return LocalGenerations(index).open(full=True)


def test_a_generation_built_on_ray_equals_one_built_here(cluster, docs, tmp_path):
    here = qa.build_index(docs, tmp_path / "here", progress=False)
    on_ray = qa.build_index(docs, tmp_path / "ray", progress=False, ray="auto", ray_workers=2)
    assert on_ray.chunks_embedded == here.chunks_embedded == here.chunks >= 6

    a, b = _generation(tmp_path / "here"), _generation(tmp_path / "ray")
    try:
        rows = list(range(a.chunks.count()))
        assert b.chunks.count() == len(rows)
        assert b.chunks.get(rows) == a.chunks.get(rows)  # same chunks, same rows, same pages
        assert np.allclose(b.vectors.vectors(np.array(rows)), a.vectors.vectors(np.array(rows)), atol=1e-5)
        pieces_a, _ = a.rows.pieces(np.array(rows))
        pieces_b, _ = b.rows.pieces(np.array(rows))
        assert np.array_equal(pieces_a, pieces_b)
        assert np.array_equal(a.rows.piece_spans_of(pieces_a), b.rows.piece_spans_of(pieces_b))
        assert np.allclose(a.rows.piece_vectors_of(pieces_a), b.rows.piece_vectors_of(pieces_b), atol=2e-2)
    finally:
        a.lease.release()
        b.lease.release()
    for question in QUESTIONS:
        expected = qa.load(tmp_path / "here").retrieve(question, k=3)
        found = qa.load(tmp_path / "ray").retrieve(question, k=3)
        assert [h.chunk_id for h in found] == [h.chunk_id for h in expected]
        assert [h.score for h in found] == pytest.approx([h.score for h in expected], abs=1e-4)


def test_an_update_on_ray_embeds_only_the_new_document(cluster, docs, tmp_path):
    index = tmp_path / "index"
    qa.build_index(docs, index, progress=False, ray="auto")
    (docs / "new.txt").write_text("El puerto de Valparaíso recibió en 2024 un nuevo muelle para cruceros.\n",
                                  encoding="utf-8")
    report = qa.build_index(docs, index, progress=False, ray="auto")
    assert (report.added, report.unchanged, report.chunks_embedded) == (1, 3, 1)
    assert "Valparaíso" in qa.load(index).retrieve("new cruise pier in Valparaíso", k=1)[0].text


def test_a_failing_worker_names_the_file_and_the_index_keeps_answering(cluster, docs, tmp_path, monkeypatch):
    index = tmp_path / "index"
    qa.build_index(docs, index, progress=False)
    before = qa.load(index).retrieve("who supplied drones to Russia?", k=1)[0]
    (docs / "new.txt").write_text("Un documento que cambia mientras se indexa.\n", encoding="utf-8")
    # The worker reads the file again and checks its content id: send it a wrong one, as if
    # the file had changed on disk after the folder was scanned.
    sent = NewDocument.to_json
    monkeypatch.setattr(NewDocument, "to_json",
                        lambda self: sent(self).replace(self.doc_id, "0" * 64) if self.source == "new.txt" else sent(self))
    with pytest.raises(DocumentError, match="new.txt changed while it was being indexed"):
        qa.build_index(docs, index, progress=False, ray="auto")
    after = qa.load(index)
    assert [d.source for d in after.documents()] == ["corea.txt", "lisbon-trams.md", "schwebebahn.txt"]
    assert after.retrieve("who supplied drones to Russia?", k=1)[0].chunk_id == before.chunk_id


def test_an_engine_build_on_ray_sends_the_encoded_batches_straight_to_the_engine(cluster, docs, tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite", reason='the engine needs Milvus Lite: pip install -e ".[engine-test]"')
    from qa.store.milvus import publish

    def copied(*args, **kwargs):
        raise AssertionError("the publish copied rows that the build had sent to the engine")

    monkeypatch.setenv("QA_ENGINE_STAGING", str(tmp_path / "staging"))
    monkeypatch.setattr(publish, "_insert_chunks", copied)  # every row must have been inserted as it came
    uri = f"milvus-lite://{tmp_path / 'engine.db'}"
    report = qa.build_index(docs, uri, progress=False, ray="auto", ray_workers=2)
    qa.build_index(docs, tmp_path / "here", progress=False)
    engine, here = qa.load(uri), qa.load(tmp_path / "here")
    assert engine.stats().chunks == report.chunks == here.stats().chunks
    for question in QUESTIONS:
        found, expected = engine.retrieve(question, k=3), here.retrieve(question, k=3)
        assert [(h.chunk_id, h.text, h.page) for h in found] == [(h.chunk_id, h.text, h.page) for h in expected]
        assert [h.score for h in found] == pytest.approx([h.score for h in expected], abs=1e-4)


def _run_cli(*args: str, code: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = f"import sys; from qa.cli import main\nsys.argv = {['qa', *args]!r}\ntry:\n    main()\nexcept SystemExit:\n    pass\n{code}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)


def test_qa_index_with_ray_auto_starts_a_local_cluster_and_stops_it(docs, tmp_path):
    done = _run_cli("index", str(docs), "--index-dir", str(tmp_path / "index"), "--ray", "auto", "--ray-workers", "2",
                    "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == 3 and report["chunks_embedded"] == report["chunks"]
    assert "Rusia" in qa.load(tmp_path / "index").retrieve("who supplied drones to Russia?", k=1)[0].text


def test_without_ray_nothing_imports_ray(docs, tmp_path):
    done = _run_cli("index", str(docs), "--index-dir", str(tmp_path / "index"), "--quiet",
                    code="print('ray imported' if 'ray' in sys.modules else 'ray not imported')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ray not imported")


def test_bad_ray_settings_are_one_line_errors(docs, tmp_path):
    done = _run_cli("index", str(docs), "--index-dir", str(tmp_path / "index"), "--ray", "auto", "--ray-workers", "0")
    assert "--ray-workers must be at least 1, got 0" in done.stderr
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").glob("gen-*"))
