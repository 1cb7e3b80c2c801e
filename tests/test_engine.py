"""The Milvus store backend (issue 16) against real engines on this machine: Milvus Lite for
most cases, and one real Milvus standalone server started on loopback ports.

Skipped, with how to install them, when the engine packages are missing; CI installs them
(the ``engine-test`` extra).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason='the engine tests need the milvus extra: pip install -e ".[engine-test]"')
pytest.importorskip("milvus_lite", reason='the engine tests need Milvus Lite: pip install -e ".[engine-test]"')

import qa  # noqa: E402
from qa.store.milvus.location import MilvusLocation  # noqa: E402
from qa.store.milvus.publish import generations_on  # noqa: E402
from qa.store.milvus.reader import MilvusGenerations, read_stats  # noqa: E402

from conftest import FIXTURES, SEED_ARTICLE  # noqa: E402

QUESTIONS = [
    "Who supplied drones to Russia?",
    "¿Quién suministró drones a Rusia?",
    "Which tram line goes to Belém?",
    "Wie alt ist die Schwebebahn in Wuppertal?",
    "When was the suspension railway opened?",
    "¿Qué armas envió Corea del Norte?",
]
WUPPERTAL = "Seit wann fährt die Schwebebahn in Wuppertal?"


@pytest.fixture(autouse=True)
def private_staging(tmp_path, monkeypatch):
    """Each test stages its builds in its own folder and keeps the default grace period."""
    monkeypatch.setenv("QA_ENGINE_STAGING", str(tmp_path / "staging"))
    monkeypatch.delenv("QA_MILVUS_GRACE_SECONDS", raising=False)


def make_docs(folder: Path, wuppertal: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED_ARTICLE, folder / SEED_ARTICLE.name)
    shutil.copy(FIXTURES / "lisbon-trams.md", folder / "lisbon-trams.md")
    if wuppertal:
        shutil.copy(FIXTURES / "schwebebahn.txt", folder / "schwebebahn.txt")
    else:
        (folder / "schwebebahn.txt").unlink(missing_ok=True)
    return folder


def top5(index, question: str) -> list[str]:
    return [h.chunk_id for h in index.retrieve(question, k=5)]


def lite_uri(tmp_path: Path, name: str = "qa") -> str:
    return f"milvus-lite://{tmp_path / 'engine.db'}?name={name}"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One set of documents indexed locally and on Milvus Lite (module-wide: builds take seconds)."""
    root = tmp_path_factory.mktemp("engine")
    docs = make_docs(root / "docs")
    os.environ["QA_ENGINE_STAGING"] = str(root / "staging")
    uri = lite_uri(root)
    report = qa.build_index(docs, uri, progress=False)
    qa.build_index(docs, root / "local", progress=False)
    shutil.rmtree(root / "staging")  # a query process needs nothing but the URI
    return uri, root / "local", report


def test_an_index_on_milvus_lite_answers_as_the_local_one(built):
    uri, local_dir, report = built
    assert report.index_dir == uri and report.documents == 3 and report.chunks == report.chunks_embedded > 3
    engine, local = qa.load(uri), qa.load(local_dir)
    for question in QUESTIONS:
        engine_hits, local_hits = engine.retrieve(question, k=5), local.retrieve(question, k=5)
        assert [h.chunk_id for h in engine_hits] == [h.chunk_id for h in local_hits], question
        assert [h.score for h in engine_hits] == pytest.approx([h.score for h in local_hits], abs=1e-5)
        assert [(h.source, h.start, h.end, h.page, h.text) for h in engine_hits] == \
               [(h.source, h.start, h.end, h.page, h.text) for h in local_hits]
    answer = engine.ask("Who supplied drones to Russia?")
    assert answer.citations and answer.citations[0].source == SEED_ARTICLE.name
    assert engine.ask("Which tram line goes to Belém?").text == local.ask("Which tram line goes to Belém?").text
    stats = engine.stats()
    assert (stats.index_dir, stats.documents, stats.chunks, stats.vector_index) == (uri, 3, report.chunks, "milvus-flat")
    assert stats.size_bytes > 0
    assert [d.source for d in engine.documents()] == [d.source for d in local.documents()]


def test_the_engine_generation_provides_every_store_protocol(built):
    from qa.store import protocols

    generation = MilvusGenerations(MilvusLocation.parse(built[0])).open()
    for part, kind in (("vectors", protocols.VectorIndex), ("chunks", protocols.ChunkStore),
                       ("rows", protocols.RankingRowStore), ("vocabulary", protocols.VocabularyStore)):
        assert isinstance(getattr(generation, part), kind), part
    assert isinstance(generation, protocols.Generation)
    # a document filter: the search stays among the rows given
    among = generation.chunks.of_documents([generation.manifest.documents["lisbon-trams.md"].doc_id])[0].tolist()
    vector = generation.vectors.vectors(among[:1])
    scores, rows = generation.vectors.search(vector, 5, among=sorted(among))
    assert set(rows[0][rows[0] >= 0].tolist()) <= set(among) and rows[0][0] == among[0]
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_cli_index_search_ask_and_info_take_the_uri(tmp_path):
    from click.testing import CliRunner

    from qa.cli import cli

    docs = make_docs(tmp_path / "docs", wuppertal=False)
    uri = f"milvus-lite://{tmp_path / 'cli.db'}"
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(docs), "--index-dir", uri])
    assert result.exit_code == 0, result.output
    assert f"Index {uri}: 2 documents" in result.output
    result = runner.invoke(cli, ["search", "Which tram line goes to Belém?", "--index-dir", uri, "-k", "1"])
    assert result.exit_code == 0 and "lisbon-trams.md" in result.output, result.output
    result = runner.invoke(cli, ["ask", "Which tram line goes to Belém?", "--index-dir", uri])
    assert result.exit_code == 0 and "lisbon-trams.md" in result.output, result.output
    result = runner.invoke(cli, ["info", "--index-dir", uri])
    assert result.exit_code == 0 and "2 documents" in result.output and "milvus-flat" in result.output, result.output
    result = runner.invoke(cli, ["search", "trams", "--index-dir", "milvus://127.0.0.1/x"])
    assert result.exit_code == 1 and "milvus://HOST:PORT/NAME" in result.output


def test_an_update_embeds_only_new_content_and_a_deleted_document_loses_its_rows(tmp_path):
    docs = make_docs(tmp_path / "docs")
    uri = lite_uri(tmp_path)
    first = qa.build_index(docs, uri, progress=False)
    index = qa.load(uri)
    gone = index.snapshot().manifest.documents["schwebebahn.txt"].doc_id
    assert index.retrieve(WUPPERTAL, k=1)[0].source == "schwebebahn.txt"

    (docs / "schwebebahn.txt").unlink()
    with open(docs / "lisbon-trams.md", "a", encoding="utf-8") as handle:
        handle.write("\n\nThe funicular of Glória climbs from Restauradores to Bairro Alto since 1885.\n")
    second = qa.build_index(docs, uri, progress=False)
    assert (second.added, second.changed, second.removed, second.unchanged) == (0, 1, 1, 1)
    lisbon_chunks = qa.load(uri).snapshot().manifest.documents["lisbon-trams.md"].chunks
    assert second.chunks_embedded == lisbon_chunks < first.chunks_embedded  # content hashes decided
    assert all(h.source != "schwebebahn.txt" for h in index.retrieve(WUPPERTAL, k=5))
    assert "Glória" in index.retrieve("Which funicular climbs to Bairro Alto?", k=1)[0].text
    engine = MilvusGenerations(MilvusLocation.parse(uri))
    rows, chunks = engine.open().chunks.of_documents([gone])
    assert len(rows) == 0 and chunks == []
    assert qa.build_index(docs, uri, progress=False).chunks_embedded == 0  # nothing changed, nothing published
    assert engine.current_generation() == index.snapshot().name


def current_record(uri: str) -> dict:
    engine = MilvusGenerations(MilvusLocation.parse(uri))
    return read_stats(engine.client, "qa", engine.current_generation())


def same_as_a_fresh_build(uri: str, docs: Path, fresh: Path) -> None:
    """The engine's retrieval equals that of the staged local copy it mirrors (the same
    segments and deleted rows: passages and scores), and it finds the passages an index
    built afresh from ``docs`` finds (their scores may differ a little where an update's
    vocabulary differs from a fresh one's: tests/test_segments.py covers the local updates)."""
    from qa.build.engine import staging_folder

    qa.build_index(docs, fresh, progress=False)
    engine, staged, built = qa.load(uri), qa.load(staging_folder(uri) / "index"), qa.load(fresh)
    assert engine.stats().chunks == staged.stats().chunks == built.stats().chunks
    for question in QUESTIONS + [WUPPERTAL]:
        ours, mirrored, theirs = engine.retrieve(question, k=5), staged.retrieve(question, k=5), built.retrieve(question, k=5)
        assert [h.chunk_id for h in ours] == [h.chunk_id for h in mirrored], question
        assert [h.score for h in ours] == pytest.approx([h.score for h in mirrored], abs=1e-5)
        assert {h.chunk_id for h in ours} == {h.chunk_id for h in theirs}, question


def test_an_update_uploads_only_what_it_changed_and_answers_as_a_fresh_build(tmp_path, monkeypatch):
    from qa.build import artifacts
    from qa.store.milvus import publish

    monkeypatch.setattr(artifacts, "COMPACT_SHARE", 100.0)  # on these few chunks, updates stay segments of their own
    original = publish.publish
    docs = make_docs(tmp_path / "docs")
    uri = lite_uri(tmp_path)
    qa.build_index(docs, uri, progress=False)
    engine = MilvusGenerations(MilvusLocation.parse(uri))
    client = engine.client
    first = current_record(uri)
    before = set(client.list_collections())

    # one document added: one new segment holding its rows, its new words, a new record; the
    # rows went to the engine as they were encoded, so the publish copies none
    (docs / "extra.txt").write_text("The Glória funicular climbs from Restauradores to Bairro Alto since 1885. "
                                    "Its yellow cars were electrified in 1915.", encoding="utf-8")

    def copied(*args, **kwargs):
        raise AssertionError("the publish copied rows that the build had sent to the engine")

    with monkeypatch.context() as patched:
        patched.setattr(publish, "_insert_chunks", copied)
        report = qa.build_index(docs, uri, progress=False)
    second = current_record(uri)
    added = qa.load(uri).snapshot().manifest.documents["extra.txt"].chunks
    assert report.added == 1 and report.chunks_embedded == added
    assert second["segments"][:-1] == first["segments"] and second["segments"][-1]["rows"] == added
    new = second["segments"][-1]["name"]
    assert set(client.list_collections()) - before == {f"qa_{new}_chunks", f"qa_{new}_pieces", "qa_g000002_meta"}
    assert client.query(f"qa_{new}_chunks", filter="", output_fields=["count(*)"])[0]["count(*)"] == added
    assert second["words"] == first["words"] and 0 < second["vocabulary"] - first["vocabulary"] < 40
    words = f"qa_{second['words']}_words"
    assert client.query(words, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"] == \
           second["vocabulary"]  # the earlier words were not sent again
    changed = second["near_rows"] - first["near_rows"]
    assert second["near"] == first["near"] and 0 < changed < first["near_words"] / 10  # only the changed translations
    same_as_a_fresh_build(uri, docs, tmp_path / "fresh-1")

    # a change and a removal: the changed document's new rows in a segment, its old ones and
    # the removed document's deleted
    with open(docs / "lisbon-trams.md", "a", encoding="utf-8") as handle:
        handle.write("\n\nTram 24 returned to Carris service in 2018 after 23 years.\n")
    (docs / "schwebebahn.txt").unlink()
    qa.build_index(docs, uri, progress=False)
    third = current_record(uri)
    assert third["segments"][:2] == second["segments"] and len(third["segments"]) == 3
    generation = engine.open()
    assert len(generation.vectors.layout.deleted) > 0
    same_as_a_fresh_build(uri, docs, tmp_path / "fresh-2")

    # compaction: past MAX_SEGMENTS the later segments are merged into one, uploaded once
    # (the rows streamed while encoding are not a segment then: named by no record)
    monkeypatch.setattr(artifacts, "MAX_SEGMENTS", 2)
    shutil.copy(FIXTURES / "schwebebahn.txt", docs / "schwebebahn.txt")
    streams = []
    monkeypatch.setattr(publish, "publish", lambda *a, **k: streams.append(k["streamed"].name) or original(*a, **k))
    qa.build_index(docs, uri, progress=False)
    monkeypatch.setattr(publish, "publish", original)
    fourth = current_record(uri)
    assert fourth["segments"][0] == first["segments"][0] and len(fourth["segments"]) == 2
    assert streams[0] not in {s["name"] for s in fourth["segments"]}
    assert f"qa_{streams[0]}_chunks" not in client.list_collections()
    same_as_a_fresh_build(uri, docs, tmp_path / "fresh-3")

    # a full compaction: one segment, nothing deleted; the replaced generations' segments go
    monkeypatch.setattr(artifacts, "COMPACT_SHARE", 0.01)
    monkeypatch.setenv("QA_MILVUS_GRACE_SECONDS", "0")
    (docs / "extra.txt").unlink()
    qa.build_index(docs, uri, progress=False)
    assert len(current_record(uri)["segments"]) == 1 and len(engine.open().vectors.layout.deleted) == 0
    named = {s["name"] for s in current_record(uri)["segments"]}
    on = {c.split("_")[1] for c in client.list_collections() if c.endswith(("_chunks", "_pieces"))}
    assert on == named
    same_as_a_fresh_build(uri, docs, tmp_path / "fresh-4")


def test_a_rebuild_on_the_engine_starts_the_vocabulary_again_and_answers_as_a_fresh_build(tmp_path):
    docs = make_docs(tmp_path / "docs")
    uri = lite_uri(tmp_path)
    qa.build_index(docs, uri, progress=False)
    first = current_record(uri)
    (docs / SEED_ARTICLE.name).unlink()  # the first words the vocabulary had are gone from it
    qa.build_index(docs, uri, progress=False, rebuild=True)
    rebuilt = current_record(uri)
    assert rebuilt["words"] != first["words"] and rebuilt["near"] != first["near"]  # word ids differ now
    assert len(rebuilt["segments"]) == 1 and rebuilt["segments"][0]["name"] != first["segments"][0]["name"]
    qa.build_index(docs, tmp_path / "fresh", progress=False)
    engine, fresh = qa.load(uri), qa.load(tmp_path / "fresh")
    for question in QUESTIONS + [WUPPERTAL]:
        ours, theirs = engine.retrieve(question, k=5), fresh.retrieve(question, k=5)
        assert [h.chunk_id for h in ours] == [h.chunk_id for h in theirs], question
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)


def test_a_reader_during_updates_sees_the_old_or_the_new_index_never_half(tmp_path):
    with_docs, without_docs = make_docs(tmp_path / "with"), make_docs(tmp_path / "without", wuppertal=False)
    expected = {}
    for name, docs in (("with", with_docs), ("without", without_docs)):
        qa.build_index(docs, tmp_path / f"local-{name}", progress=False)
        expected[name] = top5(qa.load(tmp_path / f"local-{name}"), WUPPERTAL)
    assert expected["with"] != expected["without"]
    uri = lite_uri(tmp_path)
    qa.build_index(with_docs, uri, progress=False)
    index = qa.load(uri)
    seen, errors, stop = [], [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(top5(index, WUPPERTAL))
            except Exception as exc:  # any failure is what the test looks for
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for docs in (without_docs, with_docs, without_docs):
            qa.build_index(docs, uri, progress=False)
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert len(seen) > 3 and all(result in expected.values() for result in seen)
    assert top5(index, WUPPERTAL) == expected["without"]


def test_a_failed_publish_leaves_the_previous_generation_answering(tmp_path, monkeypatch):
    from qa.store.milvus import publish

    docs = make_docs(tmp_path / "docs")
    uri = lite_uri(tmp_path)
    qa.build_index(docs, uri, progress=False)
    index = qa.load(uri)
    before, name = top5(index, WUPPERTAL), index.snapshot().name
    (docs / "schwebebahn.txt").unlink()

    def broken(*args, **kwargs):
        raise ConnectionError("engine went away mid-publish")

    monkeypatch.setattr(publish, "_insert_pieces", broken)  # the chunks are in, the rest never comes
    with pytest.raises(ConnectionError):
        qa.build_index(docs, uri, progress=False)
    client = MilvusGenerations(MilvusLocation.parse(uri)).client
    assert generations_on(client, "qa") == [1] and "qa_s000002_chunks" in client.list_collections()  # half a segment...
    reopened = qa.load(uri)  # ...but the alias still names generation 1, whole
    assert reopened.snapshot().name == name and top5(reopened, WUPPERTAL) == before == top5(index, WUPPERTAL)

    monkeypatch.undo()
    monkeypatch.setenv("QA_ENGINE_STAGING", str(tmp_path / "staging"))
    report = qa.build_index(docs, uri, progress=False)
    assert report.chunks_embedded == report.chunks  # the staged copy did not match the engine: all again
    # the half-written segment was dropped and its number taken again (no reader ever knew
    # it); the replaced generation 1 stays for its grace period
    assert generations_on(client, "qa") == [1, 2] and reopened.snapshot().name == "g000002"
    assert sorted(c for c in client.list_collections() if c.endswith("_chunks")) == ["qa_s000001_chunks",
                                                                                     "qa_s000002_chunks"]
    assert all(h.source != "schwebebahn.txt" for h in index.retrieve(WUPPERTAL, k=5))

    monkeypatch.setenv("QA_MILVUS_GRACE_SECONDS", "0")
    (docs / "extra.txt").write_text("A short note about the Glória funicular in Lisbon.", encoding="utf-8")
    qa.build_index(docs, uri, progress=False)
    assert generations_on(client, "qa") == [3]  # past the grace period the replaced ones go


def test_top5_equals_the_local_backend_on_xquad_questions(tmp_path):
    from qa.eval.benchmark import load_benchmark

    articles = range(4)
    load_benchmark("es", "es", articles=articles).write_articles(tmp_path / "docs")
    uri = lite_uri(tmp_path)
    qa.build_index(tmp_path / "docs", uri, progress=False)
    qa.build_index(tmp_path / "docs", tmp_path / "local", progress=False)
    engine, local = qa.load(uri), qa.load(tmp_path / "local")
    questions = [q.text for language in ("en", "es") for q in load_benchmark(language, "es", articles=articles).questions]
    same = sum(top5(engine, q) == top5(local, q) for q in questions)
    assert len(questions) > 150 and same / len(questions) >= 0.99, (same, len(questions))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_server(tmp_path):
    """A real Milvus standalone server (the ``milvus`` package's binary) on loopback ports,
    stopped afterwards (:func:`stop_group`)."""
    pytest.importorskip("milvus", reason='the standalone server test needs the milvus package: pip install -e ".[engine-test]"')
    server = shutil.which("milvus-server", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if server is None:
        pytest.skip('milvus-server is not installed: pip install -e ".[engine-test]"')
    port = free_port()
    ports = ["--proxy-port", str(port)]
    for flag in ("--root-coord-port", "--proxy-internal-port", "--query-coord-port", "--query-node-port",
                 "--index-coord-port", "--index-node-port", "--data-coord-port", "--data-node-port"):
        ports += [flag, str(free_port())]
    log = open(tmp_path / "milvus.log", "wb")
    process = subprocess.Popen([server, "--data", str(tmp_path / "milvus-data"), *ports], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "milvus.log").read_text(errors="replace")[-3000:]
            try:
                from pymilvus import MilvusClient

                MilvusClient(f"http://127.0.0.1:{port}", timeout=2).list_collections()
                break
            except Exception:
                assert time.monotonic() < deadline, "the Milvus server did not become ready in 120 s"
                time.sleep(1)
        yield f"milvus://127.0.0.1:{port}/qa_test"
    finally:
        stop_group(process)
        log.close()


def stop_group(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the server's process group (the launcher and the ``milvus`` process it starts),
    wait until every member has gone, SIGKILL what is left after ``timeout``."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is None:
            time.sleep(0.5)
        try:
            os.killpg(process.pid, 0)  # is any member left?
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.5)
    process.wait()


KILLED_PUBLISH = """
import os, signal, sys, qa
from qa.store.milvus import publish

def killed(*args, **kwargs):  # the chunks are in; the process dies before the rest
    os.kill(os.getpid(), signal.SIGKILL)

publish._insert_pieces = killed
qa.build_index(sys.argv[1], sys.argv[2], progress=False)
"""


@pytest.mark.slow
def test_a_real_milvus_standalone_server_answers_as_the_local_index(tmp_path, standalone_server):
    uri = standalone_server
    docs = make_docs(tmp_path / "docs")
    report = qa.build_index(docs, uri, progress=False)
    qa.build_index(docs, tmp_path / "local", progress=False)
    engine, local = qa.load(uri), qa.load(tmp_path / "local")
    assert engine.stats().chunks == report.chunks
    for question in QUESTIONS:
        assert top5(engine, question) == top5(local, question), question
    before = top5(engine, WUPPERTAL)

    # a build killed (SIGKILL, another process) in the middle of its publish
    (docs / "schwebebahn.txt").unlink()
    done = subprocess.run([sys.executable, "-c", KILLED_PUBLISH, str(docs), uri], timeout=600, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(Path(qa.__file__).parents[1])})
    assert done.returncode == -signal.SIGKILL, done.stderr.decode(errors="replace")[-2000:]
    client = MilvusGenerations(MilvusLocation.parse(uri)).client
    assert generations_on(client, "qa_test") == [1]  # half of a new segment was written, no record
    assert "qa_test_s000002_chunks" in client.list_collections()
    assert top5(engine, WUPPERTAL) == before and top5(qa.load(uri), WUPPERTAL) == before

    qa.build_index(docs, uri, progress=False)
    assert all(h.source != "schwebebahn.txt" for h in engine.retrieve(WUPPERTAL, k=5))
    assert engine.snapshot().name == "g000002"


def test_the_app_opens_builds_and_describes_an_index_on_the_engine(tmp_path):
    from qa.app import handlers, security

    docs = make_docs(tmp_path / "docs", wuppertal=False)
    uri = f"milvus-lite://{tmp_path / 'app.db'}"
    library = handlers.Library.open(docs, uri)  # no index yet: built from the folder, then opened
    assert library.index_dir == uri and library.index.location == uri
    assert f"**Index:** `{uri}`" in handlers.stats_markdown(library)
    assert library.index.ask("Which tram line goes to Belém?").citations[0].source == "lisbon-trams.md"
    assert str((tmp_path / "docs").resolve()) in security.blocked_paths(library, Path(__file__).parent)
    shutil.copy(FIXTURES / "schwebebahn.txt", docs / "schwebebahn.txt")
    assert library.build().added == 1  # "Update from folder" publishes a new generation
    assert library.index.retrieve(WUPPERTAL, k=1)[0].source == "schwebebahn.txt"
