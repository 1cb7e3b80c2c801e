"""Reading an index on Milvus: the current generation's parts, as the store protocols name them.

A query reads: the ANN candidates from ``chunks`` (one search), then the candidates' ranking
rows with their text (one query of ``chunks``, sent together with one of ``pieces`` for their
piece vectors), cached per generation so that the ranking's several reads of the same ~50
rows and the hits' text cost no further round trip. The word tables are read
by word or id; document frequencies and totals are read once when a generation is opened.

There is no reader lease on an engine: a build drops a replaced generation only after a
grace period (:mod:`qa.store.milvus.publish`), and a reader follows the alias before every
query, so only a query in flight at the switch runs on the old generation, for seconds.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ...errors import IndexCorruptError, IndexNotFoundError
from ...recently_used import RecentlyUsed
from ...text import lexical
from ...text.lexical import Collection
from ...types import Chunk, PageSpan
from ..manifest import Manifest
from ..protocols import Neighbours
from ..vocabulary import CANDIDATES, in_use_neighbours, merge_candidates
from .location import MilvusLocation, _one_line
from .schema import (
    GENERATION, PARTS, HNSW_EF, RankingRow, collection, decode, meta_values, quoted, unpack_neighbours, unpack_ranking,
)

_QUERY_LIMIT = 16_384  # Milvus's largest result window
_CACHED_ROWS = 4_096  # ranking rows (and their pieces) kept per generation
_CHUNK_FIELDS = ["row", "chunk_id", "doc_id", "start", "end", "page", "text", "spans"]


class NoLease:
    """An engine generation has no reader lease (see the module docstring)."""

    def release(self) -> None:
        pass


def current_generation(client, base: str, exists: bool = False) -> str | None:
    """The generation the alias ``base`` names, or None if there is none. ``exists``: the
    alias was seen before (aliases are never removed), so one call is enough."""
    if not exists and base not in client.list_aliases().get("aliases", []):  # describe_alias would log an error
        return None
    described = client.describe_alias(base)
    name = described.get("collection_name", "")
    prefix, suffix = f"{base}_", "_chunks"
    middle = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
    return middle if GENERATION.fullmatch(middle) else None


def ensure_loaded(client, name: str) -> None:
    """Load a collection into the query nodes if it is not (after a server restart)."""
    state = str(client.get_load_state(name).get("state", ""))
    if not state.endswith("Loaded"):
        client.load_collection(name)


def query_all(client, name: str, filter: str, fields: list[str]) -> list[dict]:
    """Every entity matching ``filter``, in windows of _QUERY_LIMIT (by primary key order)."""
    iterator = client.query_iterator(name, batch_size=min(_QUERY_LIMIT, 4096), filter=filter, output_fields=fields)
    found: list[dict] = []
    try:
        while batch := iterator.next():
            found.extend(batch)
    finally:
        iterator.close()
    return found


class MilvusGenerations:
    """An index on a Milvus engine (a :class:`~qa.store.protocols.Generations`)."""

    def __init__(self, location: MilvusLocation, client=None) -> None:
        self.where = location
        self.client = client if client is not None else location.client()
        self._seen = False  # whether the alias was seen: then it is asked for in one call

    @property
    def location(self) -> str:
        return self.where.uri

    def current_generation(self) -> str | None:
        name = current_generation(self.client, self.where.base, exists=self._seen)
        self._seen = name is not None
        return name

    def size_bytes(self, generation: str) -> int:
        """The bytes the generation's entities hold, as recorded when it was published."""
        values = meta_values(self.client.query(collection(self.where.base, generation, "meta"),
                                               filter='key == "stats/0000"', output_fields=["key", "value"]))
        return int(json.loads(values["stats"])["bytes"])

    def open(self) -> MilvusGeneration:
        for _ in range(5):
            name = self.current_generation()
            if name is None:
                raise IndexNotFoundError(f"no index at {self.location}; build one with "
                                         f"`qa index DOCS_DIR --index-dir {self.location}`")
            try:
                return MilvusGeneration.open(self.client, self.where.base, name)
            except IndexCorruptError:
                if self.current_generation() == name:
                    raise
                # the alias moved on while this one was opened (and it may be gone): follow it
        raise IndexCorruptError(f"{self.location} keeps changing under the reader; try again")


@dataclass(frozen=True)
class MilvusGeneration:
    """One opened generation on the engine (a :class:`~qa.store.protocols.Generation`)."""

    name: str
    manifest: Manifest
    vectors: MilvusVectors
    chunks: MilvusChunks
    rows: MilvusRankingRows
    vocabulary: MilvusVocabulary
    lease: NoLease

    @classmethod
    def open(cls, client, base: str, name: str) -> MilvusGeneration:
        names = {part: collection(base, name, part) for part in PARTS}
        try:
            for full in names.values():
                ensure_loaded(client, full)
            values = meta_values(client.query(names["meta"], filter='key != ""', output_fields=["key", "value"],
                                              limit=_QUERY_LIMIT))
            manifest = Manifest.from_json(values["manifest"].decode("utf-8"), f"{base}_{name}_meta")
            stats = json.loads(values["stats"])
            count = client.query(names["chunks"], filter="", output_fields=["count(*)"])[0]["count(*)"]
        except IndexCorruptError:
            raise
        except Exception as exc:
            raise IndexCorruptError(f"cannot open generation {name} of {base}: {_one_line(exc)}; "
                                    "run `qa index --rebuild`") from exc
        if not (manifest.chunks == stats["rows"] == count):
            raise IndexCorruptError(f"generation {name} of {base} is inconsistent (manifest {manifest.chunks} chunks, "
                                    f"totals {stats['rows']}, collection {count}); run `qa index --rebuild`")
        word_df = np.frombuffer(values["word_df"], "<i4")
        rows = MilvusRankingRows(client, names, stats,
                                 Collection(stats["rows"], stats["ngram_length"], np.frombuffer(values["ngram_df"], "<i4")),
                                 Collection(stats["rows"], stats["word_length"], word_df))
        places = json.loads(values["places"])
        return cls(name, manifest,
                   MilvusVectors(client, names["chunks"], int(manifest.embedder["dimension"]), count, manifest.vector_index),
                   MilvusChunks(client, names["chunks"], count, places, rows.chunks), rows,
                   MilvusVocabulary(client, names["words"], names["near"], stats["vocabulary"], stats["stores_neighbours"],
                                    int(manifest.embedder["dimension"])),
                   NoLease())


class MilvusVectors:
    """The chunk vectors' ANN index on the engine (a :class:`~qa.store.protocols.VectorIndex`)."""

    def __init__(self, client, name: str, dimension: int, size: int, described: dict) -> None:
        self.client, self.name, self._dimension, self._size, self._described = client, name, dimension, size, described

    @property
    def kind(self) -> str:
        return str(self._described.get("type"))

    @property
    def size(self) -> int:
        return self._size

    @property
    def dimension(self) -> int:
        return self._dimension

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self._dimension)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        if len(queries) == 0 or self._size == 0 or (among is not None and len(among) == 0):
            return scores, rows
        params = {"metric_type": "IP", "params": {"ef": max(HNSW_EF, k)}}
        found = self.client.search(self.name, data=queries.tolist(), limit=min(k, _QUERY_LIMIT), search_params=params,
                                   filter="" if among is None else f"row in {np.asarray(among).tolist()}",
                                   output_fields=[])
        for i, hits in enumerate(found):
            for j, hit in enumerate(hits):
                rows[i, j] = hit["id"] if "id" in hit else hit["row"]
                scores[i, j] = hit["distance"]
        return scores, rows

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = [int(r) for r in rows]
        found = {}
        for start in range(0, len(rows), _QUERY_LIMIT):
            part = rows[start:start + _QUERY_LIMIT]
            found.update((e["row"], e["vector"]) for e in
                         self.client.query(self.name, filter=f"row in {part}", output_fields=["row", "vector"]))
        return np.array([found[r] for r in rows], dtype=np.float32).reshape(len(rows), self._dimension)

    def describe(self) -> dict:
        return dict(self._described)


def _stored_chunk(entity: dict) -> Chunk:
    spans = tuple(PageSpan(*s) for s in json.loads(entity["spans"]))
    page = int(entity["page"])
    return Chunk(entity["chunk_id"], entity["doc_id"], int(entity["start"]), int(entity["end"]),
                 None if page < 0 else page, entity["text"], spans)


class MilvusChunks:
    """Chunk text and provenance on the engine (a :class:`~qa.store.protocols.ChunkStore`)."""

    def __init__(self, client, name: str, count: int, places: dict[str, str], recent: RecentlyUsed) -> None:
        self.client, self.name, self._count, self._places = client, name, count, places
        self._recent = recent  # the candidates' chunks, read with their ranking rows

    def count(self) -> int:
        return self._count

    def get(self, rows: Sequence[int]) -> list[Chunk]:
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found = self._recent.get(rows)
        unread = sorted(set(rows) - found.keys())
        if unread:
            found.update((e["row"], _stored_chunk(e)) for e in
                         self.client.query(self.name, filter=f"row in {unread}", output_fields=_CHUNK_FIELDS))
        missing = [r for r in rows if r not in found]
        if missing:
            raise IndexCorruptError(f"{self.name} lacks rows {missing[:5]}; run `qa index --rebuild`")
        return [found[r] for r in rows]

    def of_documents(self, doc_ids: Iterable[str]) -> tuple[np.ndarray, list[Chunk]]:
        doc_ids = list(doc_ids)
        if not doc_ids:
            return np.zeros(0, dtype=np.int64), []
        found = sorted(query_all(self.client, self.name, f"doc_id in {quoted(doc_ids)}", _CHUNK_FIELDS),
                       key=lambda e: int(e["row"]))
        return np.array([int(e["row"]) for e in found], dtype=np.int64), [_stored_chunk(e) for e in found]

    def places_by_document(self) -> dict[str, str]:
        return dict(self._places)


class MilvusRankingRows:
    """The per-chunk ranking rows on the engine (a :class:`~qa.store.protocols.RankingRowStore`).

    Piece rows are the generation's global piece numbers (each chunk's pieces are
    consecutive from its ``piece_start``), as in the local store.
    """

    def __init__(self, client, names: dict[str, str], stats: dict, ngrams: Collection, words: Collection) -> None:
        self.client, self._names = client, names
        self.rows = int(stats["rows"])
        self._piece_total = int(stats["piece_total"])
        self.ngrams, self.words = ngrams, words
        self._recent = RecentlyUsed(_CACHED_ROWS)  # row -> (its RankingRow, its pieces' codes)
        self.chunks = RecentlyUsed(_CACHED_ROWS)  # row -> Chunk, read with the ranking rows for MilvusChunks
        self._piece_owner: dict[int, int] = {}  # piece row -> chunk row, for the rows cached
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-milvus-rows")
        self._owner_lock = threading.Lock()

    @property
    def piece_total(self) -> int:
        return self._piece_total

    def _read(self, rows: Sequence[int]) -> list[tuple[RankingRow, np.ndarray]]:
        """The ranking rows and piece codes of ``rows``: cached, or read in two queries sent at
        once (the packed rows from ``chunks``, the piece codes from ``pieces`` by chunk row)."""
        rows = [int(r) for r in rows]
        found = self._recent.get(rows)
        missing = sorted(set(rows) - found.keys())
        if missing:
            pieces = self._pool.submit(self.client.query, self._names["pieces"], filter=f"row in {missing}",
                                       output_fields=["piece", "row", "codes"], limit=_QUERY_LIMIT)
            # the chunks' text comes along (~1.7 KB each): the top ones are read next, as hits
            entities = self.client.query(self._names["chunks"], filter=f"row in {missing}",
                                         output_fields=_CHUNK_FIELDS + ["ranking"])
            packed = {e["row"]: unpack_ranking(e["ranking"]) for e in entities}
            self.chunks.put([e["row"] for e in entities], [_stored_chunk(e) for e in entities])
            codes = {e["piece"]: e["codes"] for e in pieces.result()}
            expected = sum(len(row.piece_scales) for row in packed.values())
            if len(packed) != len(missing) or len(codes) != expected:
                if expected >= _QUERY_LIMIT:  # more pieces than one reply holds: by piece, in windows
                    codes = self._codes_by_piece(packed)
                if len(packed) != len(missing) or len(codes) != expected:
                    raise IndexCorruptError(f"{self._names['chunks']} lacks ranking rows or pieces; "
                                            "run `qa index --rebuild`")
            fresh = {}
            for r in missing:
                row = packed[r]
                own = range(row.piece_start, row.piece_start + len(row.piece_scales))
                matrix = np.array([np.frombuffer(decode(codes[p]), np.int8) for p in own], dtype=np.int8)
                fresh[r] = (row, matrix.reshape(len(own), -1))
            self._recent.put(list(fresh), list(fresh.values()))
            with self._owner_lock:
                for r, (row, _) in fresh.items():
                    for p in range(row.piece_start, row.piece_start + len(row.piece_scales)):
                        self._piece_owner[p] = r
                if len(self._piece_owner) > 64 * _CACHED_ROWS:
                    self._piece_owner = {p: r for p, r in self._piece_owner.items() if r in fresh}
            found.update(fresh)
        return [found[r] for r in rows]

    def _codes_by_piece(self, packed: dict[int, RankingRow]) -> dict[int, str]:
        pieces = [p for row in packed.values() for p in range(row.piece_start, row.piece_start + len(row.piece_scales))]
        codes: dict[int, str] = {}
        for start in range(0, len(pieces), _QUERY_LIMIT):
            part = pieces[start:start + _QUERY_LIMIT]
            codes.update((e["piece"], e["codes"]) for e in
                         self.client.query(self._names["pieces"], filter=f"piece in {part}", output_fields=["piece", "codes"]))
        return codes

    def _pieces_data(self, pieces: np.ndarray) -> list[tuple[RankingRow, np.ndarray, int]]:
        """Per piece row: its chunk's ranking row, codes and the piece's place in the chunk."""
        pieces = [int(p) for p in pieces]
        with self._owner_lock:
            owners = [self._piece_owner.get(p) for p in pieces]
        if any(o is None for o in owners):
            raise IndexCorruptError("a piece row was asked for before its chunk's rows were read")
        by_row = dict(zip(sorted(set(owners)), self._read(sorted(set(owners)))))
        return [(*by_row[o], p - by_row[o][0].piece_start) for p, o in zip(pieces, owners)]

    def pieces(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        read = self._read(np.asarray(rows).tolist())
        counts = [len(row.piece_scales) for row, _ in read]
        pieces = np.concatenate([np.arange(row.piece_start, row.piece_start + len(row.piece_scales), dtype=np.int64)
                                 for row, _ in read] + [np.empty(0, np.int64)])
        return pieces, np.repeat(np.arange(len(read)), counts)

    def piece_vectors_of(self, pieces: np.ndarray) -> np.ndarray:
        data = self._pieces_data(pieces)
        if not data:
            return np.empty((0, 0), dtype=np.float32)
        codes = np.array([m[j] for _, m, j in data])
        scales = np.array([row.piece_scales[j] for row, _, j in data], dtype=np.float32)
        return codes.astype(np.float32) * scales[:, None]

    def piece_cosines(self, pieces: np.ndarray, vector: np.ndarray) -> np.ndarray:
        data = self._pieces_data(pieces)
        if not data:
            return np.empty(0, dtype=np.float32)
        codes = np.array([m[j] for _, m, j in data])
        scales = np.array([row.piece_scales[j] for row, _, j in data], dtype=np.float32)
        return (codes.astype(np.float32) @ vector) * scales

    def piece_spans_of(self, pieces: np.ndarray) -> np.ndarray:
        data = self._pieces_data(pieces)
        return np.array([row.piece_spans[j] for row, _, j in data], dtype=np.int32).reshape(-1, 2)

    def window_norms_of(self, pieces: np.ndarray) -> np.ndarray:
        return np.array([row.piece_norms[j] for row, _, j in self._pieces_data(pieces)], dtype=np.float32)

    def _matches(self, rows: np.ndarray, ids: np.ndarray, group: str) -> lexical.Matches:
        read = self._read(np.asarray(rows).tolist())
        term_ids = [getattr(row, f"{group}_ids") for row, _ in read]
        counts = [getattr(row, f"{group}_counts") for row, _ in read]
        ptr = np.concatenate([[0], np.cumsum([len(t) for t in term_ids])]).astype(np.int64)
        return lexical.matches(ptr, np.concatenate(term_ids + [np.empty(0, np.uint32)]),
                               np.concatenate(counts + [np.empty(0, np.uint8)]), np.arange(len(read)), ids)

    def ngram_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return self._matches(rows, ids, "ngram")

    def word_matches(self, rows: np.ndarray, ids: np.ndarray) -> lexical.Matches:
        return self._matches(rows, ids, "word")

    def ngram_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([row.ngram_length for row, _ in self._read(np.asarray(rows).tolist())], dtype=np.int32)

    def word_lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([row.word_length for row, _ in self._read(np.asarray(rows).tolist())], dtype=np.int32)

    def profiles_of(self, rows: np.ndarray) -> np.ndarray:
        read = self._read(np.asarray(rows).tolist())
        return np.array([row.profile for row, _ in read], dtype=np.uint32).reshape(len(read), -1)

    def word_ids_of(self, row: int) -> np.ndarray:
        ((ranking, _),) = self._read([int(row)])
        return ranking.word_ids.astype(np.int64)


class MilvusVocabulary:
    """The word tables on the engine (a :class:`~qa.store.protocols.VocabularyStore`).

    Unknown question words are searched exactly (FLAT) among the vocabulary's vectors; the
    local store searches an HNSW graph, so the two may differ for such words only.
    """

    def __init__(self, client, name: str, near: str, size: int, stores_neighbours: bool, dimension: int) -> None:
        self.client, self.name, self._near, self._size = client, name, near, size
        self._stores, self._dimension = stores_neighbours, dimension

    @property
    def size(self) -> int:
        return self._size

    @property
    def stores_neighbours(self) -> bool:
        return self._stores

    def _by_words(self, name: str, words: Sequence[str], fields: list[str]) -> list[dict]:
        words = sorted(set(words))
        found: list[dict] = []
        for start in range(0, len(words), 1024):
            found.extend(self.client.query(name, filter=f"word in {quoted(words[start:start + 1024])}",
                                           output_fields=fields))
        return found

    def ids(self, words: Sequence[str]) -> dict[str, int]:
        return {e["word"]: int(e["id"]) for e in self._by_words(self.name, words, ["word", "id"])}

    def _by_ids(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict]:
        ids = sorted({int(i) for i in ids})
        found: dict[int, dict] = {}
        for start in range(0, len(ids), _QUERY_LIMIT):
            found.update((e["id"], e) for e in self.client.query(self.name, filter=f"id in {ids[start:start + _QUERY_LIMIT]}",
                                                                output_fields=fields))
        return found

    def words(self, ids: Sequence[int]) -> dict[int, str]:
        return {i: e["word"] for i, e in self._by_ids(ids, ["id", "word"]).items()}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        found = self._by_ids(ids, ["id", "vector"])
        return np.array([found[int(i)]["vector"] for i in ids], dtype=np.float32).reshape(len(ids), self._dimension)

    def neighbours(self, word_vectors: np.ndarray, in_use: np.ndarray) -> list[Neighbours]:
        vectors = np.asarray(word_vectors, dtype=np.float32).reshape(-1, self._dimension)
        if len(vectors) == 0:
            return []
        ids = np.full((len(vectors), CANDIDATES), -1, dtype=np.int64)
        cosines = np.full((len(vectors), CANDIDATES), -np.inf, dtype=np.float32)
        if self._size:
            found = self.client.search(self.name, data=vectors.tolist(), limit=CANDIDATES,
                                       search_params={"metric_type": "IP"}, output_fields=["id"])
            for i, hits in enumerate(found):
                for j, hit in enumerate(hits):
                    ids[i, j], cosines[i, j] = hit["entity"]["id"], hit["distance"]
        ids, cosines = merge_candidates(ids, cosines)
        return [in_use_neighbours(i, c, in_use) for i, c in zip(ids.tolist(), cosines.tolist())]

    def stored_neighbours(self, words: Sequence[str], in_use: np.ndarray) -> dict[str, Neighbours]:
        if not self._stores or not words:
            return {}
        result = {}
        for e in self._by_words(self._near, words, ["word", "near"]):
            if e["near"]:
                ids, cosines = unpack_neighbours(e["near"])
                kept = len(ids) - ids.count(-1)
                result[e["word"]] = in_use_neighbours(ids[:kept], cosines[:kept], in_use)
        return result
