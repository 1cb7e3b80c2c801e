"""Writing a generation to Milvus and making it current in one step.

:func:`publish` copies an opened local generation (:class:`~qa.store.local.LocalGeneration`,
which a build has just written and verified) into five new collections
``<base>_g<N+1>_*``, flushes them, checks that the engine counts every entity (a strong
read), and only then points the alias ``<base>`` at the new chunk collection
(``alter_alias``: one atomic change). Until that moment readers see the previous generation
whole; a publish that fails or is killed leaves it current, and its half-written
collections are dropped by the next publish.

Grace rule for old generations: a replaced generation stays until the generation that
replaced it has been current for ``QA_MILVUS_GRACE_SECONDS`` (default 300 s), and is
dropped by the first publish after that. Readers follow the alias before every query, so
only a query already running at the switch still reads the old one; 300 s is far longer
than any query. One writer at a time (the builder serializes the writers of one machine).
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import numpy as np

from ...errors import IndexCorruptError
from ..local import LocalGeneration
from ..ranking_rows import SegmentRows
from ..neighbour_table import NEIGHBOURS_FILE
from ..sqlite import ReadOnlyDatabase
from ..vocabulary import VOCABULARY_FILE
from .location import MilvusLocation
from .reader import current_generation, ensure_loaded
from .schema import (
    GENERATION, PARTS, PLACEHOLDER, TEXT_MAX, collection, encode, generation_name, index_params, json_bytes,
    meta_entities, meta_values, pack_neighbours, pack_ranking, schemas,
)

GRACE_ENV = "QA_MILVUS_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 300.0
_CHUNK_BATCH = 256  # entities per insert call: ~12 KB each, well under gRPC's 64 MB
_PIECE_BATCH = 4096
_WORD_BATCH = 1024
_FLAT_LIMIT_KINDS = ("flat",)  # local index kinds the engine mirrors with exact search


def generations_on(client, base: str) -> list[int]:
    """Numbers of the generations that have collections on the engine (complete or not)."""
    numbers = set()
    for name in client.list_collections():
        for part in PARTS:
            prefix, suffix = f"{base}_", f"_{part}"
            if name.startswith(prefix) and name.endswith(suffix):
                match = GENERATION.fullmatch(name[len(prefix):-len(suffix)])
                if match:
                    numbers.add(int(match.group(1)))
    return sorted(numbers)


def drop_generation(client, base: str, number: int) -> None:
    for part in PARTS:
        name = collection(base, generation_name(number), part)
        if client.has_collection(name):
            client.drop_collection(name)


def _published_at(client, base: str, number: int) -> float | None:
    name = collection(base, generation_name(number), "meta")
    try:
        found = client.query(name, filter='key == "published_at/0000"', output_fields=["value"])
    except Exception:  # a half-written generation may lack its meta collection
        return None
    return float(meta_values([{"key": "published_at/0000", "value": found[0]["value"]}])["published_at"]) if found else None


def remove_stale(client, base: str, now: float | None = None) -> list[str]:
    """Drop half-written generations (newer than the current one) and replaced generations
    whose successor has been current longer than the grace period; returns their names."""
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_SECONDS))
    now = time.time() if now is None else now
    current = current_generation(client, base)
    live = int(current[1:]) if current else None
    numbers = generations_on(client, base)
    dropped = []
    for i, number in enumerate(numbers):
        if live is None or number > live:
            stale = True  # never made current: a failed or killed publish
        elif number == live:
            stale = False
        else:
            successor = _published_at(client, base, numbers[i + 1])
            stale = successor is not None and now - successor >= grace
        if stale:
            drop_generation(client, base, number)
            dropped.append(generation_name(number))
    return dropped


def publish(generation: LocalGeneration, location: MilvusLocation, client, *, source_sha256: str,
            progress: Callable[[str], None] = lambda message: None, timings: dict[str, float] | None = None) -> str:
    """Copy ``generation`` to new collections and make it current; returns its name.
    ``source_sha256`` (of the local manifest) is recorded to recognise the staged copy;
    ``timings``, if given, gets the seconds each part took (inserts, flush and checks)."""
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock[0]
        clock[0] = now

    base = location.base
    remove_stale(client, base)
    number = max(generations_on(client, base), default=0) + 1
    name = generation_name(number)
    names = {part: collection(base, name, part) for part in PARTS}
    dimension = int(generation.manifest.embedder["dimension"])
    chunk_index = "FLAT" if generation.vectors.kind in _FLAT_LIMIT_KINDS else "HNSW"
    for part, schema in schemas(dimension).items():
        client.create_collection(names[part], schema=schema, index_params=index_params(client, part, chunk_index),
                                 consistency_level="Bounded")
    counts = {"chunks": generation.manifest.chunks}
    sizes = {part: 0 for part in PARTS}
    lap("create")
    progress(f"Publishing {counts['chunks']} chunks to {location.uri}")
    sizes["chunks"] = _insert_chunks(client, names["chunks"], generation)
    lap("chunks")
    progress("Publishing sentence pieces")
    counts["pieces"], sizes["pieces"] = _insert_pieces(client, names["pieces"], generation)
    lap("pieces")
    progress("Publishing the vocabulary")
    counts["words"], sizes["words"], counts["near"], sizes["near"] = _insert_words(client, names, generation)
    lap("words")
    meta = _meta(generation, chunk_index, counts, sizes, source_sha256)
    counts["meta"] = len(meta)
    _insert(client, names["meta"], meta)
    for part in PARTS:
        client.flush(names[part])
        ensure_loaded(client, names[part])
        # a strong read: the engine has taken in every entity before readers are pointed here
        seen = client.query(names[part], filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        if seen != counts[part]:
            raise RuntimeError(f"{names[part]} holds {seen} entities after publishing {counts[part]}")
    lap("flush and check")
    _point_alias(client, base, names["chunks"])
    progress("Removing old versions")
    remove_stale(client, base)
    return name


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


def _only_segment(generation: LocalGeneration) -> SegmentRows:
    """The staged generation's per-row files: one segment without deleted rows, as
    :func:`qa.build.engine.build_on_engine` builds it (rows 0.. are then the chunk rows)."""
    segments = generation.rows.segments
    if len(segments) != 1 or generation.manifest.deleted:
        raise IndexCorruptError(f"{generation.folder} has {len(segments)} segments and {generation.manifest.deleted} "
                                "deleted rows; a publish needs one segment (build it with one_segment=True)")
    return segments[0]


def _insert_chunks(client, name: str, generation: LocalGeneration) -> int:
    rows = _only_segment(generation)
    total_bytes = 0
    for start in range(0, generation.manifest.chunks, _CHUNK_BATCH):
        batch = np.arange(start, min(start + _CHUNK_BATCH, generation.manifest.chunks), dtype=np.int64)
        chunks = generation.chunks.get(batch.tolist())
        vectors = generation.vectors.vectors(batch)
        entities = []
        for i, chunk in zip(batch.tolist(), chunks):
            p0, p1 = int(rows.piece_ptr[i]), int(rows.piece_ptr[i + 1])
            n0, n1 = int(rows.ngram_ptr[i]), int(rows.ngram_ptr[i + 1])
            w0, w1 = int(rows.word_ptr[i]), int(rows.word_ptr[i + 1])
            ranking = pack_ranking(p0, np.asarray(rows.piece_spans[p0:p1]), np.asarray(rows.piece_scales[p0:p1]),
                                   np.asarray(rows.piece_window_norms[p0:p1]), *rows.terms("ngram", n0, n1),
                                   *rows.terms("word", w0, w1), int(rows.ngram_lengths[i]),
                                   int(rows.word_lengths[i]), rows.profiles_of(np.array([i]))[0])
            spans = json.dumps([[s.page, s.start, s.end, s.kind, s.name, s.row] for s in chunk.spans], ensure_ascii=False)
            for field, text in (("text", chunk.text), ("ranking", ranking), ("spans", spans)):
                if len(text.encode("utf-8")) > TEXT_MAX:
                    raise ValueError(f"chunk {chunk.id}'s {field} is longer than Milvus's text limit ({TEXT_MAX} "
                                     "bytes); index with a smaller --chunk-size")
            entity = {"row": i, "vector": vectors[i - start].tolist(), "chunk_id": chunk.id, "doc_id": chunk.doc_id,
                      "start": chunk.start, "end": chunk.end, "page": -1 if chunk.page is None else chunk.page,
                      "text": chunk.text, "spans": spans, "ranking": ranking}
            total_bytes += 4 * len(entity["vector"]) + 40 + sum(len(entity[f].encode("utf-8")) for f in
                                                                 ("chunk_id", "doc_id", "text", "spans", "ranking"))
            entities.append(entity)
        _insert(client, name, entities)
    return total_bytes


def _insert_pieces(client, name: str, generation: LocalGeneration) -> tuple[int, int]:
    rows = _only_segment(generation)
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


def _insert_words(client, names: dict[str, str], generation: LocalGeneration) -> tuple[int, int, int, int]:
    """The vocabulary (id, word, vector) and the stored translations (word, neighbours);
    returns (words, their bytes, stored rows, their bytes)."""
    folder = generation.folder
    vocabulary = ReadOnlyDatabase(folder / VOCABULARY_FILE).query("SELECT id, word FROM words ORDER BY id")
    dimension = int(generation.manifest.embedder["dimension"])
    word_bytes = near_bytes = 0
    for start in range(0, len(vocabulary), _WORD_BATCH):
        batch = vocabulary[start:start + _WORD_BATCH]
        vectors = generation.vocabulary.vectors([i for i, _ in batch])
        entities = [{"word": word, "id": int(i), "vector": v.tolist()} for (i, word), v in zip(batch, vectors)]
        word_bytes += sum(8 + 4 * dimension + len(e["word"].encode()) for e in entities)
        _insert(client, names["words"], entities)
    stored = []
    if (folder / NEIGHBOURS_FILE).exists():
        stored = ReadOnlyDatabase(folder / NEIGHBOURS_FILE).query("SELECT word, ids, cosines FROM neighbours")
    for start in range(0, len(stored), _WORD_BATCH):
        entities = [{"word": word, "near": pack_neighbours(ids, cosines), "placeholder": PLACEHOLDER}
                    for word, ids, cosines in stored[start:start + _WORD_BATCH]]
        near_bytes += sum(8 + len(e["word"].encode()) + len(e["near"]) for e in entities)
        _insert(client, names["near"], entities)
    return len(vocabulary), word_bytes, len(stored), near_bytes


def _meta(generation: LocalGeneration, chunk_index: str, counts: dict, sizes: dict, source_sha256: str) -> list[dict]:
    rows = generation.rows
    manifest = generation.manifest
    vector_index = {"type": f"milvus-{chunk_index.lower()}", "requested": manifest.vector_index.get("requested"),
                    "staged": manifest.vector_index.get("type")}
    engine_manifest = type(manifest)(**{**manifest.__dict__, "vector_index": vector_index, "files": {}})
    stats = {"rows": rows.rows, "ngram_length": rows.ngrams.total_length, "word_length": rows.words.total_length,
             "piece_total": rows.piece_total, "vocabulary": generation.vocabulary.size,
             "stores_neighbours": generation.vocabulary.stores_neighbours, "source_sha256": source_sha256,
             "counts": counts, "bytes": sum(sizes.values())}
    entities = []
    for key, data in (("manifest", engine_manifest.to_json().encode("utf-8")), ("stats", json_bytes(stats)),
                      ("ngram_df", np.asarray(rows.ngrams.df, "<i4").tobytes()),
                      ("word_df", np.asarray(rows.words.df, "<i4").tobytes()),
                      ("places", json_bytes(generation.chunks.places_by_document())),
                      ("published_at", repr(time.time()).encode())):
        entities.extend(meta_entities(key, data))
    return entities
