"""Publishing a generation to Milvus: only the parts the engine lacks, then one switch.

A local generation is a list of immutable segments and its deleted rows
(:mod:`qa.store.segments`); the engine mirrors it (:mod:`qa.store.milvus.schema`). A
segment is recognised by its files' checksums (a linked segment carries them over): one the
engine already holds for a live generation is named again, not copied; a new one (an
update's documents, or a merge) becomes two new collections. Word ids only grow, so the
vocabulary's new words are added to its collection, which a generation reads below its own
size; the stored translations that changed are added with the new generation's number. A
generation's record then lists it all, and the alias ``<base>`` is pointed at the record
(``alter_alias``: one atomic change). So a publish costs what the update changed, and until
the switch readers see the previous generation whole; a publish that fails or is killed
leaves it current, and what it wrote is dropped by the next build.

Every new collection is counted by a strong read (the engine has taken in every entity)
before the switch. Rows a killed publish added to the shared words and
translations collections lie beyond what any record names, so no reader sees them, and the
next publish deletes them before adding its own.

Grace rule: a replaced generation's record stays until the generation that replaced it has
been current for ``QA_MILVUS_GRACE_SECONDS`` (default 300 s), and is dropped by the first
build after that; then so is every collection that no remaining record names. Readers follow
the alias before every query, so only a query already running at the switch still reads the
old one; 300 s is far longer than any query. One writer at a time (the builder serializes
the writers of one machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...checksums import sha256_file
from ..codecs import NGRAM_TERMS, WORD_TERMS, TermLayout
from ..local import LocalGeneration
from ..neighbour_table import NEIGHBOURS_FILE
from ..ranking_rows import SegmentRows
from ..segments import SegmentEntry
from ..sqlite import ReadOnlyDatabase
from ..vocabulary import VOCABULARY_FILE
from .location import MilvusLocation
from .reader import current_generation, ensure_loaded, read_stats
from .schema import (
    ENGINE_FORMAT, PLACEHOLDER, TEXT_MAX, collection, encode, generation_name, index_params, json_bytes, meta_entities,
    meta_values, pack_neighbours, pack_ranking, part_name, parts_on, schemas,
)

GRACE_ENV = "QA_MILVUS_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 300.0
_CHUNK_BATCH = 256  # entities per insert call: ~12 KB each, well under gRPC's 64 MB
_PIECE_BATCH = 4096
_WORD_BATCH = 1024
_FLAT_LIMIT_KINDS = ("flat",)  # local index kinds the engine mirrors with exact search
#: the translations collection starts again (one row per word) when it holds more than this
#: many rows per word of the current table: older generations' rows are what it carries
_NEAR_ROWS_PER_WORD = 2.0
_LAYOUT_1_PARTS = ("chunks", "pieces", "words", "near")  # a generation's own collections before segments


@dataclass
class Published:
    """What a publish wrote: the generation's name, the segments it uploaded (engine names),
    the one the build streamed and the ones it named again, and the entities it inserted per
    kind of collection (streamed rows not counted: the build inserted them)."""

    name: str
    uploaded: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    inserted: dict[str, int] = field(default_factory=lambda: {"chunks": 0, "pieces": 0, "words": 0, "near": 0, "meta": 0})


def generations_on(client, base: str) -> list[int]:
    """Numbers of the generation records on the engine (current, replaced or half-written)."""
    return sorted(parts_on(client.list_collections(), base)["generation"])


def _published_at(client, base: str, number: int) -> float | None:
    name = collection(base, generation_name(number), "meta")
    try:
        found = client.query(name, filter='key == "published_at/0000"', output_fields=["key", "value"])
    except Exception:  # a half-written record may not be complete
        return None
    return float(meta_values(found)["published_at"]) if found else None


def _drop(client, names) -> None:
    for name in names:
        if client.has_collection(name):
            client.drop_collection(name)


def remove_stale(client, base: str, now: float | None = None) -> list[str]:
    """Drop half-written records (newer than the current one), replaced records whose
    successor has been current longer than the grace period, and then every segment, words
    or translations collection that no remaining record names; returns what was dropped."""
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_SECONDS))
    now = time.time() if now is None else now
    current = current_generation(client, base)
    live = int(current[1:]) if current else None
    on = parts_on(client.list_collections(), base)
    records = sorted(on["generation"])
    made_current = [n for n in records if live is not None and n <= live]
    kept, dropped = [], []
    for number in records:
        if live is None or number > live:
            stale = True  # never made current: a failed or killed publish
        elif number == live:
            stale = False
        else:
            successor = _published_at(client, base, made_current[made_current.index(number) + 1])
            stale = successor is not None and now - successor >= grace
        if stale:
            name = generation_name(number)
            _drop(client, [collection(base, name, part) for part in ("meta", *_LAYOUT_1_PARTS)])
            dropped.append(name)
        else:
            kept.append(number)
    named: set[str] = set()
    for number in kept:
        stats = read_stats(client, base, generation_name(number))
        if stats.get("engine_format") != ENGINE_FORMAT:
            return dropped  # an index written in the earlier layout is still read: keep everything
        named.update([entry["name"] for entry in stats["segments"]] + [stats["words"], stats["near"]])
    for kind in ("segment", "words", "near"):
        for number, names in on[kind].items():
            if part_name(kind, number) not in named:
                _drop(client, names)
                dropped.append(part_name(kind, number))
    return dropped


def segment_digest(generation: LocalGeneration, entry: SegmentEntry) -> str:
    """What identifies a local segment's content: the checksums of its files (an update
    carries a linked segment's over, so it keeps its digest)."""
    prefix = f"{entry.name}/"
    files = sorted((name[len(prefix):], f.sha256) for name, f in generation.manifest.files.items()
                   if name.startswith(prefix))
    return hashlib.sha256(json_bytes([entry.rows, files])).hexdigest()


def publish(generation: LocalGeneration, location: MilvusLocation, client, *, source_sha256: str,
            published_neighbours: Path | None = None, streamed: SegmentStream | None = None,
            progress: Callable[[str], None] = lambda message: None, timings: dict[str, float] | None = None) -> Published:
    """Make ``generation`` current on the engine, uploading only what it lacks (see the module
    docstring). ``source_sha256`` (of the local manifest) is recorded to recognise the staged
    copy; ``published_neighbours``, the stored translations table the current engine
    generation was published from (if this machine kept it), lets only changed rows go;
    ``streamed``, the new rows the build already inserted, is named if they stayed a
    segment of their own; ``timings``, if given, gets the seconds each part took."""
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock[0]
        clock[0] = now

    base = location.base
    on = parts_on(client.list_collections(), base)
    current = current_generation(client, base)
    previous = read_stats(client, base, current) if current is not None else None
    if previous is not None and previous.get("engine_format") != ENGINE_FORMAT:
        previous = None
    number = max(on["generation"], default=0) + 1
    result = Published(generation_name(number))
    dimension = int(generation.manifest.embedder["dimension"])

    # segments: named again when the engine holds them, else uploaded
    held = {entry["digest"]: entry for entry in (previous or {}).get("segments", [])}
    next_segment = max(on["segment"], default=0) + 1  # the streamed segment's number included
    segments = []
    for i, entry in enumerate(generation.manifest.segments):
        digest = segment_digest(generation, entry)
        if digest in held:
            segments.append(held[digest])
            result.reused.append(held[digest]["name"])
            continue
        kind = "FLAT" if entry.vector_index.get("type") in _FLAT_LIMIT_KINDS else "HNSW"
        rows = generation.rows.segments[i]
        if streamed is not None and streamed.local == entry.name and (streamed.rows, streamed.pieces) == \
                (entry.rows, rows.piece_total):
            name, size = streamed.name, streamed.bytes  # inserted as the build encoded them: indexed now
            chunks, pieces = collection(base, name, "chunks"), collection(base, name, "pieces")
            for collection_name, part in ((chunks, "chunks"), (pieces, "pieces")):
                client.create_index(collection_name, index_params(client, part, kind))
                client.load_collection(collection_name)
            piece_count = streamed.pieces
            result.streamed.append(name)
        else:
            name = part_name("segment", next_segment)
            next_segment += 1
            progress(f"Publishing {entry.rows} chunks to {location.uri}")
            chunks, pieces = collection(base, name, "chunks"), collection(base, name, "pieces")
            _create(client, chunks, "chunks", dimension, kind)
            _create(client, pieces, "pieces", dimension, kind)
            size = _insert_chunks(client, chunks, generation, i, rows)
            lap("chunks")
            piece_count, piece_bytes = _insert_pieces(client, pieces, rows)
            size += piece_bytes
            lap("pieces")
            result.uploaded.append(name)
            result.inserted["chunks"] += entry.rows
            result.inserted["pieces"] += piece_count
        segments.append({"name": name, "digest": digest, "rows": entry.rows, "pieces": piece_count, "index": kind,
                         "bytes": size})
        _check(client, chunks, entry.rows, seal=kind == "HNSW")
        _check(client, pieces, piece_count)
        lap("flush and check")

    progress("Publishing the vocabulary")
    words = _publish_words(client, base, generation, previous, on, dimension, result)
    lap("words")
    # translations name word ids: a vocabulary started again starts them again too
    same_words = previous is not None and words["words"] == previous["words"]
    near = _publish_near(client, base, generation, previous if same_words else None, on, number,
                         int(current[1:]) if current else 0, published_neighbours, result)
    lap("near")

    name = result.name
    record = collection(base, name, "meta")
    _create(client, record, "meta", dimension, "FLAT")
    meta = _meta(generation, segments, words, near, source_sha256)
    client.insert(record, meta)
    result.inserted["meta"] = len(meta)
    _check(client, record, len(meta))
    lap("flush and check")
    _point_alias(client, base, record)
    progress("Removing old versions")
    remove_stale(client, base)
    return result


def _create(client, name: str, part: str, dimension: int, kind: str) -> None:
    client.create_collection(name, schema=schemas(dimension)[part], index_params=index_params(client, part, kind),
                             consistency_level="Bounded")


def _check(client, name: str, expected: int, filter: str = "", seal: bool = False) -> None:
    """Check by a strong read that the engine holds ``expected`` entities of ``name``
    (matching ``filter``) before any reader is pointed at them. ``seal``: flush first, so that
    a server builds the collection's HNSW index (it indexes sealed data only; the rest it
    searches exactly). Flushing is not needed for the read, nor for durability (the inserts
    are in the engine's log), and costs a second or more per collection on a server."""
    if seal:
        client.flush(name)
    ensure_loaded(client, name)
    seen = client.query(name, filter=filter, output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    if seen != expected:
        raise RuntimeError(f"{name} holds {seen} entities{' with ' + filter if filter else ''} after publishing {expected}")


def _point_alias(client, base: str, target: str) -> None:
    """Point the alias ``base`` at ``target`` in one step: altered if it exists, else created.
    An alias whose collection was dropped by hand is not listed, but still exists: then
    creating it fails and it is altered."""
    if base in client.list_aliases().get("aliases", []):
        client.alter_alias(target, base)
        return
    try:
        client.create_alias(target, base)
    except Exception as exc:  # pymilvus' MilvusException; its codes differ between versions
        if "exist" not in str(exc):
            raise
        client.alter_alias(target, base)


def _insert(client, name: str, entities: list[dict]) -> None:
    if entities:
        client.insert(name, entities)


def _insert_chunks(client, name: str, generation: LocalGeneration, index: int, rows: SegmentRows) -> int:
    """Segment ``index``'s chunks (its own rows 0.., deleted ones too: the record names those);
    returns their bytes."""
    table, vectors = generation.segment_chunks[index], generation.segment_vectors[index]
    total_bytes = 0
    for start in range(0, rows.rows, _CHUNK_BATCH):
        batch = np.arange(start, min(start + _CHUNK_BATCH, rows.rows), dtype=np.int64)
        chunks = table.get(batch.tolist())
        batch_vectors = vectors.vectors(batch)
        entities = [chunk_entity(rows, i, chunk, vector) for i, chunk, vector in zip(batch.tolist(), chunks, batch_vectors)]
        total_bytes += sum(_entity_bytes(e) for e in entities)
        _insert(client, name, entities)
    return total_bytes


def chunk_entity(rows: SegmentRows, i: int, chunk, vector: np.ndarray) -> dict:
    """The ``chunks`` entity of a segment's row ``i`` from its files."""
    p0, p1 = int(rows.piece_ptr[i]), int(rows.piece_ptr[i + 1])
    n0, n1 = int(rows.ngram_ptr[i]), int(rows.ngram_ptr[i + 1])
    w0, w1 = int(rows.word_ptr[i]), int(rows.word_ptr[i + 1])
    return _entity(i, chunk, vector, pack_ranking(
        p0, np.asarray(rows.piece_spans[p0:p1]), np.asarray(rows.piece_scales[p0:p1]),
        np.asarray(rows.piece_window_norms[p0:p1]), *rows.terms("ngram", n0, n1), *rows.terms("word", w0, w1),
        int(rows.ngram_lengths[i]), int(rows.word_lengths[i]), rows.profiles_of(np.array([i]))[0]))


def _entity(i: int, chunk, vector: np.ndarray, ranking: str) -> dict:
    """The ``chunks`` entity of row ``i``: its vector, text, provenance and packed ranking rows."""
    spans = json.dumps([[s.page, s.start, s.end, s.kind, s.name, s.row] for s in chunk.spans], ensure_ascii=False)
    for field_name, text in (("text", chunk.text), ("ranking", ranking), ("spans", spans)):
        if len(text.encode("utf-8")) > TEXT_MAX:
            raise ValueError(f"chunk {chunk.id}'s {field_name} is longer than Milvus's text limit ({TEXT_MAX} "
                             "bytes); index with a smaller --chunk-size")
    return {"row": i, "vector": np.asarray(vector, dtype=np.float32).tolist(), "chunk_id": chunk.id,
            "doc_id": chunk.doc_id, "start": chunk.start, "end": chunk.end,
            "page": -1 if chunk.page is None else chunk.page, "text": chunk.text, "spans": spans, "ranking": ranking}


def _entity_bytes(entity: dict) -> int:
    return 4 * len(entity["vector"]) + 40 + sum(len(entity[f].encode("utf-8")) for f in
                                                ("chunk_id", "doc_id", "text", "spans", "ranking"))


class SegmentStream:
    """A build's new rows inserted into a new segment's collections as they are encoded
    (:data:`qa.build.builder.NewRowsTap`), so that the publish has nothing left to copy when
    they stay a segment of their own; if the build merges them with others (compaction) the
    merged segment is uploaded instead and these collections, named by no record, are dropped.

    Every field is known when a batch is encoded, the vocabulary ids of its words included:
    the build assigns them in order as batches arrive (which is why the build's process
    inserts, not the Ray workers: a worker cannot know the ids). The collections are indexed
    at publish time, when the segment's size and kind are known.
    """

    def __init__(self, client, base: str) -> None:
        self.client, self.base = client, base
        self.local: str | None = None  # the build's new segment folder the rows go to
        self.name: str | None = None  # the engine segment (s000007), once the first rows came
        self.rows = self.pieces = self.bytes = 0

    def add(self, local: str, chunks, vectors: np.ndarray, rows) -> None:
        """Insert a batch of new rows (:class:`~qa.store.ranking_rows.NewRows`) with their chunks and vectors."""
        if self.name is None:
            number = max(parts_on(self.client.list_collections(), self.base)["segment"], default=0) + 1
            self.local, self.name = local, part_name("segment", number)
            for part in ("chunks", "pieces"):
                self.client.create_collection(collection(self.base, self.name, part),
                                              schema=schemas(vectors.shape[1])[part], consistency_level="Bounded")
        elif local != self.local:
            raise RuntimeError(f"new rows for {local} after rows for {self.local}")
        counts = [len(own) for own in rows.piece_spans]
        first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        entities = []
        for j, chunk in enumerate(chunks):
            a, b = int(first[j]), int(first[j + 1])
            ngrams, words = rows.ngram_rows[j], rows.word_rows[j]
            entities.append(_entity(self.rows + j, chunk, vectors[j], pack_ranking(
                self.pieces + a, np.asarray(rows.piece_spans[j], dtype=np.int32).reshape(-1, 2), rows.piece_scales[a:b],
                rows.piece_window_norms[a:b], ngrams.ids, _stored_counts(ngrams.counts, NGRAM_TERMS), words.ids,
                _stored_counts(words.counts, WORD_TERMS), ngrams.length, words.length, rows.profiles[j])))
        _insert(self.client, collection(self.base, self.name, "chunks"), entities)
        owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        pieces = [{"piece": self.pieces + p, "row": self.rows + int(owner[p]), "codes": encode(rows.piece_vectors[p].tobytes()),
                   "placeholder": PLACEHOLDER} for p in range(int(first[-1]))]
        _insert(self.client, collection(self.base, self.name, "pieces"), pieces)
        self.bytes += sum(_entity_bytes(e) for e in entities) + sum(16 + 8 + len(e["codes"]) for e in pieces)
        self.rows += len(entities)
        self.pieces += int(first[-1])


def _stored_counts(counts: np.ndarray, layout: TermLayout) -> np.ndarray:
    """Term counts as a local segment stores them (saturated at the layout's largest count,
    :func:`~qa.store.codecs.pack_terms`), so that the engine ranks as the staged copy does."""
    return np.minimum(np.asarray(counts), layout.max_count)


def _insert_pieces(client, name: str, rows: SegmentRows) -> tuple[int, int]:
    """The segment's piece codes, by its own piece numbers; returns (pieces, their bytes)."""
    total = rows.piece_total
    owner = np.repeat(np.arange(rows.rows, dtype=np.int64), np.diff(np.asarray(rows.piece_ptr)))
    total_bytes = 0
    for start in range(0, total, _PIECE_BATCH):
        end = min(start + _PIECE_BATCH, total)
        codes = np.asarray(rows.piece_vectors[start:end], dtype=np.int8)
        entities = [{"piece": p, "row": int(owner[p]), "codes": encode(codes[p - start].tobytes()),
                     "placeholder": PLACEHOLDER} for p in range(start, end)]
        total_bytes += sum(16 + 8 + len(e["codes"]) for e in entities)
        _insert(client, name, entities)
    return total, total_bytes


def _publish_words(client, base: str, generation: LocalGeneration, previous: dict | None, on: dict, dimension: int,
                   result: Published) -> dict:
    """The vocabulary's words the engine lacks: those from the previous generation's size on
    if its words are this vocabulary's first ones (ids only grow), else all in a new
    collection. Returns the record's entry (collection, size, digest, bytes)."""
    vocabulary = ReadOnlyDatabase(generation.folder / VOCABULARY_FILE).query("SELECT id, word FROM words ORDER BY id")
    digest = hashlib.sha256()
    known = previous["vocabulary"] if previous is not None else 0
    prefix = None
    for i, (_, word) in enumerate(vocabulary):
        if i == known:
            prefix = digest.hexdigest()
        digest.update(word.encode("utf-8") + b"\n")
    if known == len(vocabulary):
        prefix = digest.hexdigest()
    if previous is not None and prefix == previous["words_digest"]:
        name, first, word_bytes = previous["words"], known, previous["words_bytes"]
        client.delete(collection(base, name, "words"), filter=f"id >= {known}")  # a killed publish's words
    else:
        name, first, word_bytes = part_name("words", max(on["words"], default=0) + 1), 0, 0
        _create(client, collection(base, name, "words"), "words", dimension, "FLAT")
    target = collection(base, name, "words")
    for start in range(first, len(vocabulary), _WORD_BATCH):
        batch = vocabulary[start:start + _WORD_BATCH]
        vectors = generation.vocabulary.vectors([i for i, _ in batch])
        entities = [{"word": word, "id": int(i), "vector": v.tolist()} for (i, word), v in zip(batch, vectors)]
        word_bytes += sum(8 + 4 * dimension + len(e["word"].encode()) for e in entities)
        _insert(client, target, entities)
    result.inserted["words"] = len(vocabulary) - first
    _check(client, target, len(vocabulary), f"id < {len(vocabulary)}")
    return {"words": name, "vocabulary": len(vocabulary), "words_digest": digest.hexdigest(), "words_bytes": word_bytes}


def _publish_near(client, base: str, generation: LocalGeneration, previous: dict | None, on: dict, number: int,
                  live: int, published_neighbours: Path | None, result: Published) -> dict:
    """The stored translations that changed since ``published_neighbours`` (the table the
    current engine generation holds), as rows of generation ``number``; all of them in a new
    collection when that table is unknown, lost a word, or the collection has grown too long.
    Returns the record's entry."""
    table = generation.folder / NEIGHBOURS_FILE
    if not table.exists():
        stored, words = [], 0
    else:
        connection = sqlite3.connect(table.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            words = connection.execute("SELECT COUNT(*) FROM neighbours").fetchone()[0]
            stored = _changed_rows(connection, previous, published_neighbours, words)
            if stored is None:
                stored = connection.execute("SELECT word, ids, cosines FROM neighbours").fetchall()
                previous = None
        finally:
            connection.close()
    if table.exists() and previous is not None:
        name, rows, near_bytes = previous["near"], previous["near_rows"], previous["near_bytes"]
        client.delete(collection(base, name, "near"), filter=f"generation > {live}")  # a killed publish's rows
    else:
        name, rows, near_bytes = part_name("near", max(on["near"], default=0) + 1), 0, 0
        _create(client, collection(base, name, "near"), "near", 2, "FLAT")
    target = collection(base, name, "near")
    for start in range(0, len(stored), _WORD_BATCH):
        entities = [{"word": word, "generation": number, "near": pack_neighbours(ids, cosines), "placeholder": PLACEHOLDER}
                    for word, ids, cosines in stored[start:start + _WORD_BATCH]]
        near_bytes += sum(16 + len(e["word"].encode()) + len(e["near"]) for e in entities)
        _insert(client, target, entities)
    result.inserted["near"] = len(stored)
    _check(client, target, len(stored), f"generation == {number}")
    return {"near": name, "near_rows": rows + len(stored), "near_words": words, "near_bytes": near_bytes,
            "near_table": generation.manifest.files[NEIGHBOURS_FILE].sha256 if table.exists() else None}


def _changed_rows(connection, previous: dict | None, published: Path | None, words: int) -> list[tuple] | None:
    """The rows of the new table (``connection``) that ``published`` lacks or holds otherwise;
    None when all must go: no usable published table, a word gone, or a long collection."""
    if previous is None or published is None or not published.exists() or previous.get("near_table") is None:
        return None
    if sha256_file(published) != previous["near_table"] or previous["near_rows"] > _NEAR_ROWS_PER_WORD * max(words, 1):
        return None
    connection.execute("ATTACH DATABASE ? AS old", (published.resolve().as_uri() + "?mode=ro",))
    try:
        gone = connection.execute("SELECT COUNT(*) FROM old.neighbours o WHERE NOT EXISTS "
                                  "(SELECT 1 FROM main.neighbours n WHERE n.word = o.word)").fetchone()[0]
        if gone:
            return None
        return connection.execute("SELECT n.word, n.ids, n.cosines FROM main.neighbours n LEFT JOIN old.neighbours o "
                                  "ON o.word = n.word WHERE o.word IS NULL OR o.ids != n.ids OR o.cosines != n.cosines"
                                  ).fetchall()
    finally:
        connection.execute("DETACH DATABASE old")


def _meta(generation: LocalGeneration, segments: list[dict], words: dict, near: dict, source_sha256: str) -> list[dict]:
    rows = generation.rows
    manifest = generation.manifest
    vector_index = {"type": f"milvus-{segments[0]['index'].lower()}", "requested": manifest.vector_index.get("requested"),
                    "staged": manifest.vector_index.get("type")}
    engine_manifest = type(manifest)(**{**manifest.__dict__, "vector_index": vector_index, "files": {}})
    stats = {"engine_format": ENGINE_FORMAT, "rows": rows.ngrams.rows, "ngram_length": rows.ngrams.total_length,
             "word_length": rows.words.total_length, "piece_total": rows.piece_total,
             "stores_neighbours": generation.vocabulary.stores_neighbours, "source_sha256": source_sha256,
             "segments": segments, **words, **near,
             "bytes": sum(s["bytes"] for s in segments) + words["words_bytes"] + near["near_bytes"]}
    entities = []
    for key, data in (("manifest", engine_manifest.to_json(with_documents=True).encode("utf-8")), ("stats", json_bytes(stats)),
                      ("ngram_df", np.asarray(rows.ngrams.df, "<i4").tobytes()),
                      ("word_df", np.asarray(rows.words.df, "<i4").tobytes()),
                      ("deleted", np.asarray(generation.deleted, "<i8").tobytes()),
                      ("places", json_bytes(generation.chunks.places_by_document())),
                      ("published_at", repr(time.time()).encode())):
        entities.extend(meta_entities(key, data))
    return entities
