"""The translation channel: vocabulary words found for query words in another language."""

from __future__ import annotations

import numpy as np
import pytest

from qa.encode.models import load_embedder
from qa.recently_used import RecentlyUsed
from qa.build.neighbours import store_neighbours
from qa.search.translations import Translations
from qa.store.vocabulary import Vocabulary, VocabularyBuilder


def build(folder, words, previous=None, builder_out=None):
    folder.mkdir()
    embedder = load_embedder(None)
    builder = VocabularyBuilder(folder, previous, embedder.dimension)
    ids = builder.ids(words)
    builder.finish(embedder.encode_queries)
    if builder_out is not None:
        builder_out.append(builder)
    return ids, builder.new_words


def test_query_words_map_to_their_translations(tmp_path):
    build(tmp_path / "v", ["jugador", "temporada", "ciudad", "iglesia", "drones", "puerto"])
    vocabulary = Vocabulary(tmp_path / "v")
    encoder = load_embedder(None)
    in_use = np.ones(vocabulary.size, dtype=np.int32)
    translations = Translations.of(vocabulary.neighbours(encoder.encode_queries(["player", "season", "church"]), in_use))
    found = vocabulary.words(translations.ids.tolist())
    best = {}
    for word_id, group, weight in zip(translations.ids.tolist(), translations.group.tolist(), translations.weight.tolist()):
        if weight > best.get(group, ("", 0.0))[1]:
            best[group] = (found[word_id], weight)
    assert {g: w for g, (w, _) in best.items()} == {0: "jugador", 1: "temporada", 2: "iglesia"}
    assert (translations.weight >= 0.6).all() and translations.words == 3


def test_words_no_chunk_contains_any_more_are_not_translations(tmp_path):
    ids, _ = build(tmp_path / "v", ["jugador", "jugadores", "futbolista", "temporada", "ciudad", "iglesia", "puerto"])
    vocabulary = Vocabulary(tmp_path / "v")
    player = load_embedder(None).encode_queries(["player"])
    in_use = np.ones(vocabulary.size, dtype=np.int32)
    (near,) = vocabulary.neighbours(player, in_use)
    assert ids["jugador"] in near.ids
    in_use[ids["jugador"]] = 0  # its document was removed: the id stays, its frequency is 0
    (near,) = vocabulary.neighbours(player, in_use)
    # the next in use take its place; only words close enough to be translations are kept
    assert near.ids == (ids["jugadores"], ids["futbolista"]) and min(near.cosines) >= 0.6


def test_ids_are_stable_and_only_new_words_are_encoded(tmp_path):
    first, new = build(tmp_path / "a", ["uno", "dos"])
    assert sorted(new) == ["dos", "uno"]
    second, new = build(tmp_path / "b", ["dos", "tres"], previous=tmp_path / "a")
    assert new == ["tres"] and second["dos"] == first["dos"] and second["tres"] == 2
    vocabulary = Vocabulary(tmp_path / "b")
    assert vocabulary.size == 3 and vocabulary.ids(["uno", "tres", "cuatro"]) == {"uno": first["uno"], "tres": 2}
    stored = vocabulary.vectors([2])[0]
    assert float(stored @ load_embedder(None).encode_queries(["tres"])[0]) > 0.999  # float16 storage


def test_a_vocabulary_word_claimed_twice_goes_to_the_closer_query_word():
    from qa.store.protocols import Neighbours

    translations = Translations.of([Neighbours((4, 7), (0.9, 0.65)), Neighbours((7, 2), (0.8, 0.5))])
    assert translations.ids.tolist() == [4, 7] and translations.group.tolist() == [0, 1]
    assert translations.weight.tolist() == pytest.approx([0.9, 0.8]) and translations.words == 2


def test_lru_cache_evicts_the_least_recently_used():
    cache = RecentlyUsed(capacity=2)
    cache.put(["a", "b"], np.eye(2, dtype=np.float32))
    cache.get(["a"])
    cache.put(["c"], np.ones((1, 2), dtype=np.float32))
    assert sorted(cache.get(["a", "b", "c"])) == ["a", "c"]


def store(folder, words, whole_words=None, in_use=None):
    """A vocabulary of ``words`` with its stored neighbours, as a build writes them."""
    ids, _ = build(folder, words)
    store_neighbours(folder, whole_words)
    return ids, Vocabulary(folder)


def test_stored_neighbours_of_vocabulary_words_are_what_a_query_would_find(tmp_path):
    words = ["jugador", "jugadores", "futbolista", "temporada", "ciudad", "iglesia", "puerto", "drones"]
    ids, vocabulary = store(tmp_path / "v", words)
    in_use = np.ones(vocabulary.size, dtype=np.int32)
    stored = vocabulary.stored_neighbours(words + ["player"], in_use)
    assert sorted(stored) == sorted(words)  # "player" is neither in the vocabulary nor a given whole word
    for word in words:
        (searched,) = vocabulary.neighbours(vocabulary.vectors([ids[word]]), in_use)
        assert stored[word] == searched and stored[word].ids[0] == ids[word]


def test_whole_words_get_their_translations_stored_and_words_out_of_use_are_left_out(tmp_path):
    from qa.encode.whole_words import WholeWords

    encoder = load_embedder(None)
    table = WholeWords(["player", "church"], encoder.encode_queries(["player", "church"]).astype(np.float16))
    words = ["jugador", "jugadores", "futbolista", "temporada", "ciudad", "iglesia", "puerto"]
    in_use = np.ones(len(words), dtype=np.int32)
    ids, _ = build(tmp_path / "v", words)
    in_use[ids["jugador"]] = 0  # its last document was removed
    store_neighbours(tmp_path / "v", table)
    vocabulary = Vocabulary(tmp_path / "v")
    stored = vocabulary.stored_neighbours(["player", "church"], in_use)
    searched = vocabulary.neighbours(encoder.encode_queries(["player", "church"]), in_use)
    for word, fresh in zip(["player", "church"], searched):
        assert stored[word].ids == fresh.ids  # float16 table vectors find the same words
        assert stored[word].cosines == pytest.approx(fresh.cosines, abs=2e-3)
    assert stored["church"].ids[0] == ids["iglesia"]
    assert stored["player"].ids == (ids["jugadores"], ids["futbolista"])


def test_a_vocabulary_without_stored_neighbours_stores_none(tmp_path):
    build(tmp_path / "v", ["jugador", "temporada"])  # as an index built before builds stored them
    assert Vocabulary(tmp_path / "v").stored_neighbours(["jugador"], np.ones(2, dtype=np.int32)) == {}


def table_rows(folder):
    """Every stored row of a generation's neighbour table, as Python values."""
    import sqlite3

    with sqlite3.connect(folder / "word_neighbours.sqlite") as connection:
        return {word: (np.frombuffer(ids, "<i8").tolist(), np.frombuffer(cosines, "<f4").tolist())
                for word, ids, cosines in connection.execute("SELECT word, ids, cosines FROM neighbours")}


def full_search_of(folder, whole_words, tmp_path):
    """The rows a build that searched every word again would store for ``folder``."""
    import shutil

    again = tmp_path / f"again-{folder.name}"
    shutil.copytree(folder, again)
    (again / "word_neighbours.sqlite").unlink()
    assert store_neighbours(again, whole_words).full
    return table_rows(again)


def test_updates_search_only_the_new_words_and_store_what_a_full_search_finds(tmp_path):
    from qa.encode.whole_words import WholeWords

    encoder = load_embedder(None)
    extra = ["player", "players", "church", "season", "harbour"]
    table = WholeWords(extra, encoder.encode_queries(extra).astype(np.float16))
    first = ["jugador", "temporada", "ciudad", "iglesia", "puerto", "drones", "guerra", "rusia"]
    build(tmp_path / "g1", first)
    assert store_neighbours(tmp_path / "g1", table).full
    steps = [["jugadores", "futbolista", "temporadas"],  # near stored words: their rows must gain them
             ["player", "iglesias", "catedral", "puertos"]]  # "player" was a whole word's row until now
    previous = tmp_path / "g1"
    for number, new in enumerate(steps, start=2):
        folder = tmp_path / f"g{number}"
        builders = []
        build(folder, new, previous=previous, builder_out=builders)
        assert not builders[0].graph_changed  # the graph is the previous one, shared
        assert (folder / "word_vectors.faiss").samefile(previous / "word_vectors.faiss")
        update = store_neighbours(folder, table, previous=previous)
        assert not update.full and update.searched == len(new)  # the new words, nothing else
        assert 0 < update.updated < len(first) + len(extra)  # only rows a new word entered changed
        assert table_rows(folder) == full_search_of(folder, table, tmp_path)
        previous = folder
    # what is stored is what a query searches, with or without words out of use
    vocabulary = Vocabulary(previous)
    in_use = np.ones(vocabulary.size, dtype=np.int32)
    in_use[list(vocabulary.ids(["jugador", "iglesias"]).values())] = 0
    ids = vocabulary.ids(first + steps[0] + steps[1])
    stored = vocabulary.stored_neighbours(list(ids), in_use)
    for word, word_id in ids.items():
        assert stored[word] == vocabulary.neighbours(vocabulary.vectors([word_id]), in_use)[0]
    assert vocabulary.ids(["jugadores"])["jugadores"] in stored["player"].ids  # found among the recent words
    assert stored["jugador"].ids and vocabulary.ids(["jugador"])["jugador"] not in stored["jugador"].ids


def test_past_the_recent_words_limit_the_graph_takes_them_and_every_word_is_searched(tmp_path, monkeypatch):
    import qa.store.vocabulary

    monkeypatch.setattr(qa.store.vocabulary, "RECENT_WORDS_MAX", 3)
    build(tmp_path / "g1", ["jugador", "temporada", "ciudad"])
    store_neighbours(tmp_path / "g1", None)
    builders = []
    build(tmp_path / "g2", ["iglesia", "puerto"], previous=tmp_path / "g1", builder_out=builders)
    assert not builders[0].graph_changed
    store_neighbours(tmp_path / "g2", None, previous=tmp_path / "g1")
    build(tmp_path / "g3", ["jugadores", "futbolista"], previous=tmp_path / "g2", builder_out=builders)
    assert builders[1].graph_changed  # four recent words: all went into a new graph
    assert np.load(tmp_path / "g3" / "word_vectors_recent.npy").shape[0] == 0
    update = store_neighbours(tmp_path / "g3", None, previous=None)
    assert update.full and update.searched == 7
    vocabulary = Vocabulary(tmp_path / "g3")
    assert vocabulary.size == 7
    ids = vocabulary.ids(["iglesia", "futbolista"])
    moved = vocabulary.vectors([ids["iglesia"], ids["futbolista"]])  # from the recent words to the graph
    assert (np.sum(moved * load_embedder(None).encode_queries(["iglesia", "futbolista"]), axis=1) > 0.999).all()
