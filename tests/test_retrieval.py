"""Retrieval over the seed article with the real bundled encoder, across languages."""

from __future__ import annotations

import shutil

import pytest

import qa
from qa.ingest.documents import read_text

from conftest import REPO, SEED_ARTICLE

DRONES = "drones de Irán"


@pytest.mark.parametrize("question", [
    "Who supplied drones to Russia?",
    "¿Quién suministró drones a Rusia?",
    "Wer hat Russland Drohnen geliefert?",
])
def test_the_drones_sentence_is_the_top_hit_in_three_languages(seed_index, question):
    hits = qa.load(seed_index).retrieve(question, k=5)
    assert DRONES in hits[0].text


def test_hits_carry_exact_offsets_and_are_ranked(seed_index):
    text = read_text(SEED_ARTICLE)
    hits = qa.load(seed_index).retrieve("Who supplied drones to Russia?", k=3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.source == SEED_ARTICLE.name
        assert text[hit.start:hit.end] == hit.text
        assert hit.page is None and hit.chunk_id and 0 < hit.score <= 1


def test_k_caps_the_number_of_hits(seed_index):
    index = qa.load(seed_index)
    assert len(index.retrieve("Kim Jong Un", k=1)) == 1
    assert len(index.retrieve("Kim Jong Un", k=50)) == index.stats().chunks


def test_one_liner_matches_the_index_object(seed_index):
    hits = qa.retrieve("Who supplied drones to Russia?", k=2, index_dir=seed_index)
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in qa.load(seed_index).retrieve("Who supplied drones to Russia?", k=2)]


@pytest.mark.parametrize("question,message", [
    ("", "the question is empty"),
    ("   \n\t ", "the question is empty"),
    ("x" * 2001, "the question is 2,001 characters long; the limit is 2,000"),
    ("drones\x00?", r"control character \(U\+0000\)"),
    (None, "the question must be text, got NoneType"),
])
def test_bad_questions_get_a_clear_message(seed_index, question, message):
    with pytest.raises(qa.QuestionError, match=message):
        qa.load(seed_index).retrieve(question)


@pytest.mark.parametrize("k", [0, -1, 1.5, "5", True])
def test_bad_k_names_the_value(seed_index, k):
    with pytest.raises(ValueError, match=f"k must be an integer from 1 to 1000, got {k!r}"):
        qa.load(seed_index).retrieve("drones", k=k)


def test_a_loaded_index_picks_up_a_rebuild_without_restart(seeds_copy, tmp_path):
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    index = qa.load(tmp_path / "index")
    assert index.stats().documents == 1
    (seeds_copy / "trams.txt").write_text(
        "Lisbon's tram 28 climbs from Martim Moniz through Graça and Alfama to Campo de Ourique.", encoding="utf-8")
    qa.build_index(seeds_copy, tmp_path / "index", progress=False)
    assert index.retrieve("Which tram goes through Alfama?", k=1)[0].source == "trams.txt"
    assert index.stats().documents == 2


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(qa.IndexNotFoundError, match="no index at .*nothing.*qa index"):
        qa.load(tmp_path / "nothing")


def test_langchain_retriever_returns_documents_with_citation_metadata(seed_index):
    from langchain_core.documents import Document

    retriever = qa.load(seed_index).as_langchain_retriever(k=2)
    documents = retriever.invoke("Who supplied drones to Russia?")
    assert len(documents) == 2 and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert DRONES in top.page_content
    assert top.metadata["source"] == SEED_ARTICLE.name
    assert read_text(SEED_ARTICLE)[top.metadata["start"]:top.metadata["end"]] == top.page_content


def test_index_stats_describe_the_index(seed_index):
    stats = qa.load(seed_index).stats()
    assert (stats.documents, stats.embedder, stats.dimension, stats.vector_index) == (1, "usem3", 512, "flat")
    assert stats.size_bytes > 512 * 4 * stats.chunks


def test_an_index_moved_elsewhere_still_opens(seed_index, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(seed_index, moved)
    assert DRONES in qa.load(moved).retrieve("Who supplied drones to Russia?", k=1)[0].text


def test_a_question_of_known_words_encodes_only_the_question(seed_index):
    index = qa.load(seed_index)
    snapshot = index.snapshot()
    encoded = []
    real_encode = snapshot.embedder.encode_queries
    snapshot.embedder.encode_queries = lambda texts: encoded.extend(texts) or real_encode(texts)
    try:
        index.retrieve("Which country sent weapons?")  # words the tokenizer knows: translations stored
        index.retrieve("Which country sent weapons in sacks?")  # "sacks" is neither a piece nor in the article
    finally:
        del snapshot.embedder.encode_queries
    assert encoded == ["Which country sent weapons?", "Which country sent weapons in sacks?", "sacks"]


@pytest.fixture(scope="module")
def updated_index(tmp_path_factory, seed_index):
    """The seed index after an incremental update that brought new words (the recent words)."""
    folder = tmp_path_factory.mktemp("updated")
    docs = folder / "docs"
    shutil.copytree(REPO / "seeds", docs)
    shutil.copytree(seed_index, folder / "index")
    (docs / "suministros.txt").write_text("Irán suministró drones Shahed y munición de artillería a Rusia; "
                                          "los envíos cruzaron el mar Caspio en barcazas.\n", encoding="utf-8")
    assert qa.build_index(docs, folder / "index", progress=False).words_searched > 0
    return folder / "index"


@pytest.mark.parametrize("built", ["seed_index", "updated_index"])
@pytest.mark.parametrize("question", ["Who supplied drones to Russia?", "¿Dónde se fabricarán los drones?",
                                      "Welches Land lieferte Waffen?"])
def test_stored_neighbours_rank_as_the_query_time_search_would(request, built, question, monkeypatch):
    from qa.store.vocabulary import Vocabulary

    seed_index = request.getfixturevalue(built)
    stored = qa.load(seed_index).retrieve(question, k=5)
    # as an index built before builds stored neighbours
    monkeypatch.setattr(Vocabulary, "stores_neighbours", property(lambda self: False))
    monkeypatch.setattr(Vocabulary, "stored_neighbours", lambda self, words, in_use: {})
    searched = qa.load(seed_index).retrieve(question, k=5)
    assert [h.chunk_id for h in stored] == [h.chunk_id for h in searched]
    assert [h.score for h in stored] == pytest.approx([h.score for h in searched], abs=2e-3)
