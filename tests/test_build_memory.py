"""A build holds one batch of encoded rows at a time, however large the folder: its rows and
vectors go to the new generation's files batch by batch."""

from __future__ import annotations

import numpy as np
import pytest

import qa
from qa.store import ranking_rows
from qa.store.local import LocalGenerations
from qa.store.ranking_rows import NewRows
from qa.encode.models import load_embedder
from qa.errors import DocumentError
from qa.build.builder import EMBED_BATCH
from qa.text.lexical import term_row
from qa.store.folder import IndexDirectory

from conftest import SEED_ARTICLE


class RowCountingEmbedder:
    """The bundled encoder behind the plain :class:`~qa.encode.base.Embedder` protocol, noting
    at every call how many encoded rows (:func:`qa.store.ranking_rows.rows_in_memory`) are alive."""

    def __init__(self) -> None:
        self.inner = load_embedder(None)
        self.id, self.model = self.inner.id, self.inner.model
        self.rows_held: list[int] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode_passages(self, texts):
        self.rows_held.append(ranking_rows.rows_in_memory())
        return self.inner.encode_passages(texts)

    def encode_queries(self, texts):
        self.rows_held.append(ranking_rows.rows_in_memory())
        return self.inner.encode_queries(texts)


def test_rows_in_memory_counts_the_rows_alive():
    before = ranking_rows.rows_in_memory()
    rows = NewRows.encoded([[(0, 4)], [(0, 3)], []], np.eye(2, 512, dtype=np.float32),
                           [term_row(np.array([1, 2]))] * 3, [term_row(np.array([3]))] * 3,
                           np.zeros((3, ranking_rows.PROFILE_TOKENS), np.uint32))
    assert ranking_rows.rows_in_memory() == before + 3
    del rows
    assert ranking_rows.rows_in_memory() == before


def test_a_build_over_twice_the_batch_holds_at_most_one_batch_of_rows(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    article = SEED_ARTICLE.read_text(encoding="utf-8")
    for i in range(48):  # three chunks each: 144 chunks, more than two batches
        (docs / f"copy-{i:02d}.txt").write_text(f"{article}\n\nCopia número {i}.", encoding="utf-8")
    embedder = RowCountingEmbedder()
    report = qa.build_index(docs, tmp_path / "index", model=embedder, progress=False)

    assert report.chunks_embedded == report.chunks > 2 * EMBED_BATCH
    # encoded at every batch (chunks, then pieces) and for the vocabulary after the last
    assert len(embedder.rows_held) > 2 * (report.chunks // EMBED_BATCH)
    assert max(embedder.rows_held) <= EMBED_BATCH
    assert ranking_rows.rows_in_memory() == 0

    # and the generation holds every row, in the order of the chunk table
    directory = IndexDirectory(tmp_path / "index")
    folder = directory.generation_path(directory.current_generation())
    generation = LocalGenerations(tmp_path / "index").open()
    features, table = generation.rows, generation.chunks
    assert features.rows == report.chunks
    assert not [p.name for p in folder.rglob("*") if "spool" in p.name]
    for row, chunk in enumerate(table.get(list(range(table.count())))):  # each row's pieces: its own sentences
        pieces, _ = features.pieces(np.array([row]))
        spans = features.piece_spans_of(pieces)
        assert len(spans) and spans[-1, 1] <= len(chunk.text) and chunk.text[spans[0, 0]:spans[0, 1]].strip()
    hit = qa.load(tmp_path / "index").retrieve("¿Quién suministró drones a Rusia?", k=1)[0]
    assert "drones" in hit.text


class ChangingEmbedder(RowCountingEmbedder):
    """Rewrites ``path`` at its first call: the file changes after it was scanned."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path

    def encode_passages(self, texts):
        if self.path.read_text(encoding="utf-8").endswith("."):
            self.path.write_text("Otro texto, escrito durante la indexación", encoding="utf-8")
        return super().encode_passages(texts)


def test_a_file_changed_while_it_is_indexed_fails_the_build_and_keeps_the_index(seeds_copy, tmp_path):
    """New documents are read again when embedded (their text is not held): if the content
    is no longer what was scanned, the build stops with the file's name, committing nothing."""
    index_dir = tmp_path / "index"
    qa.build_index(seeds_copy, index_dir, progress=False)
    before = qa.load(index_dir).retrieve("¿Quién suministró drones a Rusia?", k=1)[0]
    new = seeds_copy / "nuevo.txt"
    new.write_text("Valparaíso es una ciudad portuaria de Chile. Tiene muchos cerros.", encoding="utf-8")
    with pytest.raises(DocumentError, match="nuevo.txt changed while it was being indexed"):
        qa.build_index(seeds_copy, index_dir, model=ChangingEmbedder(new), progress=False)
    index = qa.load(index_dir)
    assert index.retrieve("¿Quién suministró drones a Rusia?", k=1)[0] == before
    assert "nuevo.txt" not in {hit.source for hit in index.retrieve("Valparaíso", k=5)}
