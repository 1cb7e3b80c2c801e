"""The translation channel: vocabulary words found for query words in another language."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embedding import load_embedder
from qa.lru import LruCache
from qa.vocabulary import Translations, Vocabulary, VocabularyBuilder, store_neighbours


def build(folder, words, previous=None):
    folder.mkdir()
    embedder = load_embedder(None)
    builder = VocabularyBuilder(folder, previous, embedder.dimension)
    ids = builder.ids(words)
    builder.finish(embedder.encode_queries)
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
    assert ids["jugador"] not in near.ids and len(near.ids) == 3


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
    from qa.vocabulary import Neighbours

    translations = Translations.of([Neighbours((4, 7), (0.9, 0.65)), Neighbours((7, 2), (0.8, 0.5))])
    assert translations.ids.tolist() == [4, 7] and translations.group.tolist() == [0, 1]
    assert translations.weight.tolist() == pytest.approx([0.9, 0.8]) and translations.words == 2


def test_lru_cache_evicts_the_least_recently_used():
    cache = LruCache(capacity=2)
    cache.put(["a", "b"], np.eye(2, dtype=np.float32))
    cache.get(["a"])
    cache.put(["c"], np.ones((1, 2), dtype=np.float32))
    assert sorted(cache.get(["a", "b", "c"])) == ["a", "c"]


def store(folder, words, whole_words=None, in_use=None):
    """A vocabulary of ``words`` with its stored neighbours, as a build writes them."""
    ids, _ = build(folder, words)
    in_use = np.ones(len(ids), dtype=np.int32) if in_use is None else in_use
    store_neighbours(folder, in_use, whole_words)
    return ids, Vocabulary(folder)


def test_stored_neighbours_of_vocabulary_words_are_what_a_query_would_find(tmp_path):
    words = ["jugador", "jugadores", "futbolista", "temporada", "ciudad", "iglesia", "puerto", "drones"]
    ids, vocabulary = store(tmp_path / "v", words)
    in_use = np.ones(vocabulary.size, dtype=np.int32)
    stored = vocabulary.stored_neighbours(words + ["player"])
    assert sorted(stored) == sorted(words)  # "player" is neither in the vocabulary nor a given whole word
    for word in words:
        (searched,) = vocabulary.neighbours(vocabulary.vectors([ids[word]]), in_use)
        assert stored[word] == searched and stored[word].ids[0] == ids[word]


def test_whole_words_get_their_translations_stored_and_words_out_of_use_are_left_out(tmp_path):
    from qa.whole_words import WholeWords

    encoder = load_embedder(None)
    table = WholeWords(["player", "church"], encoder.encode_queries(["player", "church"]).astype(np.float16))
    words = ["jugador", "jugadores", "futbolista", "temporada", "ciudad", "iglesia", "puerto"]
    in_use = np.ones(len(words), dtype=np.int32)
    ids, _ = build(tmp_path / "v", words)
    in_use[ids["jugador"]] = 0  # its last document was removed
    store_neighbours(tmp_path / "v", in_use, table)
    vocabulary = Vocabulary(tmp_path / "v")
    stored = vocabulary.stored_neighbours(["player", "church"])
    searched = vocabulary.neighbours(encoder.encode_queries(["player", "church"]), in_use)
    for word, fresh in zip(["player", "church"], searched):
        assert stored[word].ids == fresh.ids  # float16 table vectors find the same words
        assert stored[word].cosines == pytest.approx(fresh.cosines, abs=2e-3)
    assert stored["church"].ids[0] == ids["iglesia"]
    assert ids["jugador"] not in stored["player"].ids and len(stored["player"].ids) == 3


def test_a_vocabulary_without_stored_neighbours_stores_none(tmp_path):
    build(tmp_path / "v", ["jugador", "temporada"])  # as an index built before builds stored them
    assert Vocabulary(tmp_path / "v").stored_neighbours(["jugador"]) == {}
