"""Reading an index on Milvus: the current generation's parts, as the store protocols name them.

The alias ``<base>`` names the current generation's record (:mod:`qa.store.milvus.schema`),
which lists its segments in row order and its deleted rows: rows are numbered across the
segments as in a local generation (row ``r`` of segment ``i`` is ``starts[i] + r``, and its
pieces likewise), so the same rows come out of both backends. A query reads: the ANN
candidates of every segment (one search each, sent at once, without the deleted rows, merged
by score as :class:`~qa.store.segments.SegmentedVectors` merges), then the candidates'
ranking rows with their text (per segment they fall in, one query of ``chunks`` sent together
with one of ``pieces``), cached per generation so that the ranking's several reads of the
same ~50 rows and the hits' text cost no further round trip. The word tables are read by word
or id; document frequencies and totals are read once when a generation is opened.

There is no reader lease on an engine: a build drops the parts of a replaced generation only
after a grace period (:mod:`qa.store.milvus.publish`), and a reader follows the alias before
every query, so only a query in flight at the switch runs on the old generation, for seconds.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
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
from ..segments import split_rows, starts_of
from .schema import (
    ENGINE_FORMAT, GENERATION, HNSW_EF, RankingRow, collection, decode, meta_values, quoted, unpack_neighbours,
    unpack_ranking,
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
    prefix, suffix = f"{base}_", "_meta"
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
        """The bytes the generation's entities hold (its segments', words' and stored
        translations'), as recorded when it was published."""
        return int(read_stats(self.client, self.where.base, generation)["bytes"])

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
        record = collection(base, name, "meta")
        try:
            ensure_loaded(client, record)
            values = meta_values(client.query(record, filter='key != ""', output_fields=["key", "value"],
                                              limit=_QUERY_LIMIT))
            manifest = Manifest.from_json(values["manifest"].decode("utf-8"), record)
            stats = json.loads(values["stats"])
            if stats.get("engine_format") != ENGINE_FORMAT:
                raise IndexCorruptError(f"{record} was written in another layout; run `qa index --rebuild`")
            segments = [Segment.of(base, entry) for entry in stats["segments"]]
            words, near = collection(base, stats["words"], "words"), collection(base, stats["near"], "near")
            for full in [s.chunks for s in segments] + [s.pieces for s in segments] + [words, near]:
                ensure_loaded(client, full)
            counts = [client.query(s.chunks, filter="", output_fields=["count(*)"])[0]["count(*)"] for s in segments]
        except IndexCorruptError:
            raise
        except Exception as exc:
            raise IndexCorruptError(f"cannot open generation {name} of {base}: {_one_line(exc)}; "
                                    "run `qa index --rebuild`") from exc
        deleted = np.frombuffer(values["deleted"], "<i8")
        rows_in = [s.rows for s in segments]
        if counts != rows_in or not (manifest.chunks == stats["rows"] == sum(rows_in) - len(deleted)):
            raise IndexCorruptError(f"generation {name} of {base} is inconsistent (manifest {manifest.chunks} chunks, "
                                    f"totals {stats['rows']}, segments {rows_in} less {len(deleted)} deleted, "
                                    f"collections {counts}); run `qa index --rebuild`")
        layout = Layout(segments, starts_of(rows_in), starts_of([s.pieces_total for s in segments]), deleted)
        word_df = np.frombuffer(values["word_df"], "<i4")
        rows = MilvusRankingRows(client, layout, stats,
                                 Collection(stats["rows"], stats["ngram_length"], np.frombuffer(values["ngram_df"], "<i4")),
                                 Collection(stats["rows"], stats["word_length"], word_df))
        places = json.loads(values["places"])
        dimension = int(manifest.embedder["dimension"])
        return cls(name, manifest, MilvusVectors(client, layout, dimension, manifest.vector_index, rows.pool),
                   MilvusChunks(client, layout, places, rows.chunks), rows,
                   MilvusVocabulary(client, words, near, stats["vocabulary"], stats["stores_neighbours"], dimension,
                                    int(name[1:])),
                   NoLease())


def read_stats(client, base: str, generation: str) -> dict:
    """The totals and parts a generation's record lists (its ``stats`` block)."""
    found = client.query(collection(base, generation, "meta"), filter='key == "stats/0000"',
                         output_fields=["key", "value"])
    return json.loads(meta_values(found)["stats"])


@dataclass(frozen=True)
class Segment:
    """A segment on the engine, as a generation's record lists it."""

    name: str  # s000003
    rows: int  # its rows, deleted ones included
    pieces_total: int
    chunks: str  # its collections' names
    pieces: str

    @classmethod
    def of(cls, base: str, entry: dict) -> Segment:
        return cls(entry["name"], int(entry["rows"]), int(entry["pieces"]), collection(base, entry["name"], "chunks"),
                   collection(base, entry["name"], "pieces"))


@dataclass(frozen=True)
class Layout:
    """A generation's segments, where their rows and pieces start, and its deleted rows."""

    segments: list[Segment]
    starts: np.ndarray  # the first row of each segment, and the row after the last
    piece_starts: np.ndarray
    deleted: np.ndarray  # sorted

    def deleted_in(self, index: int) -> list[int]:
        """Segment ``index``'s deleted rows, its own numbers."""
        a, b = self.starts[index], self.starts[index + 1]
        return (self.deleted[(self.deleted >= a) & (self.deleted < b)] - a).tolist()

    def by_segment(self, rows) -> list[tuple[int, np.ndarray, list[int]]]:
        """(segment index, positions in ``rows``, the segment's own rows) of each segment ``rows`` fall in."""
        return [(i, positions, own.tolist()) for i, positions, own in
                split_rows(np.asarray(rows, dtype=np.int64), self.starts)]


class MilvusVectors:
    """The chunk vectors' ANN indexes on the engine, one per segment, searched as one (a
    :class:`~qa.store.protocols.VectorIndex`)."""

    def __init__(self, client, layout: Layout, dimension: int, described: dict, pool: ThreadPoolExecutor) -> None:
        self.client, self.layout, self._dimension, self._described = client, layout, dimension, described
        self._pool = pool
        self._without = [layout.deleted_in(i) for i in range(len(layout.segments))]

    @property
    def kind(self) -> str:
        return str(self._described.get("type"))

    @property
    def size(self) -> int:
        return int(self.layout.starts[-1]) - len(self.layout.deleted)

    @property
    def dimension(self) -> int:
        return self._dimension

    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self._dimension)
        if len(queries) == 0 or self.size == 0 or (among is not None and len(among) == 0):
            return (np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1, dtype=np.int64))
        params = {"metric_type": "IP", "params": {"ef": max(HNSW_EF, k)}}
        layout, sent = self.layout, []
        for i, segment in enumerate(layout.segments):
            if among is None:
                filter = f"row not in {self._without[i]}" if self._without[i] else ""
            else:
                own = np.asarray(among, dtype=np.int64)
                own = own[(own >= layout.starts[i]) & (own < layout.starts[i + 1])] - layout.starts[i]
                own = np.setdiff1d(own, self._without[i], assume_unique=True).tolist()
                if not own:
                    continue
                filter = f"row in {own}"
            sent.append((i, self._pool.submit(self.client.search, segment.chunks, data=queries.tolist(),
                                              limit=min(k, _QUERY_LIMIT), search_params=params, filter=filter,
                                              output_fields=[])))
        scores = np.full((len(queries), k * max(1, len(sent))), -np.inf, dtype=np.float32)
        rows = np.full(scores.shape, -1, dtype=np.int64)
        for s, (i, reply) in enumerate(sent):
            for q, hits in enumerate(reply.result()):
                for j, hit in enumerate(hits):
                    rows[q, s * k + j] = (hit["id"] if "id" in hit else hit["row"]) + int(layout.starts[i])
                    scores[q, s * k + j] = hit["distance"]
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # as the local segments are merged
        return np.take_along_axis(scores, best, axis=1), np.take_along_axis(rows, best, axis=1)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        result = np.empty((len(rows), self._dimension), dtype=np.float32)
        for i, positions, own in self.layout.by_segment(rows):
            found = {}
            for start in range(0, len(own), _QUERY_LIMIT):
                part = own[start:start + _QUERY_LIMIT]
                found.update((e["row"], e["vector"]) for e in self.client.query(
                    self.layout.segments[i].chunks, filter=f"row in {part}", output_fields=["row", "vector"]))
            result[positions] = np.array([found[r] for r in own], dtype=np.float32).reshape(len(own), self._dimension)
        return result

    def describe(self) -> dict:
        return dict(self._described)


def _stored_chunk(entity: dict) -> Chunk:
    spans = tuple(PageSpan(*s) for s in json.loads(entity["spans"]))
    page = int(entity["page"])
    return Chunk(entity["chunk_id"], entity["doc_id"], int(entity["start"]), int(entity["end"]),
                 None if page < 0 else page, entity["text"], spans)


class MilvusChunks:
    """Chunk text and provenance on the engine (a :class:`~qa.store.protocols.ChunkStore`)."""

    def __init__(self, client, layout: Layout, places: dict[str, str], recent: RecentlyUsed) -> None:
        self.client, self.layout, self._places = client, layout, places
        self._recent = recent  # the candidates' chunks, read with their ranking rows

    def count(self) -> int:
        return int(self.layout.starts[-1]) - len(self.layout.deleted)

    def get(self, rows: Sequence[int]) -> list[Chunk]:
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found = self._recent.get(rows)
        unread = sorted(set(rows) - found.keys())
        for i, _, own in self.layout.by_segment(unread):
            start = int(self.layout.starts[i])
            found.update((e["row"] + start, _stored_chunk(e)) for e in self.client.query(
                self.layout.segments[i].chunks, filter=f"row in {own}", output_fields=_CHUNK_FIELDS))
        missing = [r for r in rows if r not in found]
        if missing:
            raise IndexCorruptError(f"the segments of this generation lack rows {missing[:5]}; run `qa index --rebuild`")
        return [found[r] for r in rows]

    def of_documents(self, doc_ids: Iterable[str]) -> tuple[np.ndarray, list[Chunk]]:
        doc_ids = list(doc_ids)
        if not doc_ids:
            return np.zeros(0, dtype=np.int64), []
        found = []
        for i, segment in enumerate(self.layout.segments):
            start = int(self.layout.starts[i])
            found += [(int(e["row"]) + start, e) for e in
                      query_all(self.client, segment.chunks, f"doc_id in {quoted(doc_ids)}", _CHUNK_FIELDS)]
        found.sort(key=lambda pair: pair[0])
        rows = np.array([r for r, _ in found], dtype=np.int64)
        live = ~np.isin(rows, self.layout.deleted)
        return rows[live], [_stored_chunk(e) for (_, e), keep in zip(found, live.tolist()) if keep]

    def places_by_document(self) -> dict[str, str]:
        return dict(self._places)


class MilvusRankingRows:
    """The per-chunk ranking rows on the engine (a :class:`~qa.store.protocols.RankingRowStore`).

    Piece rows are numbered across the segments (each chunk's pieces are consecutive from its
    ``piece_start``), as in the local store.
    """

    def __init__(self, client, layout: Layout, stats: dict, ngrams: Collection, words: Collection) -> None:
        self.client, self.layout = client, layout
        self.rows = int(layout.starts[-1])
        self._piece_total = int(stats["piece_total"])
        self.ngrams, self.words = ngrams, words
        self._recent = RecentlyUsed(_CACHED_ROWS)  # row -> (its RankingRow, its pieces' codes)
        self.chunks = RecentlyUsed(_CACHED_ROWS)  # row -> Chunk, read with the ranking rows for MilvusChunks
        self._piece_owner: dict[int, int] = {}  # piece row -> chunk row, for the rows cached
        # the queries of one read (two per segment read), and the segments' searches, go out at once
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qa-milvus")
        self._owner_lock = threading.Lock()

    @property
    def piece_total(self) -> int:
        return self._piece_total

    def _read(self, rows: Sequence[int]) -> list[tuple[RankingRow, np.ndarray]]:
        """The ranking rows and piece codes of ``rows``: cached, or read, per segment they fall
        in, in two queries sent at once (the packed rows from its ``chunks``, the piece codes
        from its ``pieces`` by chunk row)."""
        rows = [int(r) for r in rows]
        found = self._recent.get(rows)
        missing = sorted(set(rows) - found.keys())
        if missing:
            sent = []
            for i, _, own in self.layout.by_segment(missing):
                segment = self.layout.segments[i]
                sent.append((i, self.pool.submit(self.client.query, segment.pieces, filter=f"row in {own}",
                                                 output_fields=["piece", "row", "codes"], limit=_QUERY_LIMIT),
                             # the chunks' text comes along (~1.7 KB each): the top ones are read next, as hits
                             self.pool.submit(self.client.query, segment.chunks, filter=f"row in {own}",
                                              output_fields=_CHUNK_FIELDS + ["ranking"])))
            fresh = {}
            for i, pieces, entities in sent:
                fresh.update(self._unpacked(i, pieces.result(), entities.result()))
            if len(fresh) != len(missing):
                raise IndexCorruptError("the segments of this generation lack ranking rows; run `qa index --rebuild`")
            self._recent.put(list(fresh), list(fresh.values()))
            with self._owner_lock:
                for r, (row, _) in fresh.items():
                    for p in range(row.piece_start, row.piece_start + len(row.piece_scales)):
                        self._piece_owner[p] = r
                if len(self._piece_owner) > 64 * _CACHED_ROWS:
                    self._piece_owner = {p: r for p, r in self._piece_owner.items() if r in fresh}
            found.update(fresh)
        return [found[r] for r in rows]

    def _unpacked(self, index: int, pieces: list[dict], entities: list[dict]) -> dict[int, tuple[RankingRow, np.ndarray]]:
        """Segment ``index``'s rows read: {row: (its RankingRow, its piece codes)}, numbered across segments."""
        start, piece_start = int(self.layout.starts[index]), int(self.layout.piece_starts[index])
        packed = {e["row"]: unpack_ranking(e["ranking"]) for e in entities}
        self.chunks.put([e["row"] + start for e in entities], [_stored_chunk(e) for e in entities])
        codes = {e["piece"]: e["codes"] for e in pieces}
        expected = sum(len(row.piece_scales) for row in packed.values())
        if len(codes) != expected and expected >= _QUERY_LIMIT:  # more pieces than one reply holds: by piece
            codes = self._codes_by_piece(self.layout.segments[index].pieces, packed)
        if len(codes) != expected:
            raise IndexCorruptError(f"{self.layout.segments[index].pieces} lacks pieces; run `qa index --rebuild`")
        fresh = {}
        for r, row in packed.items():
            own = range(row.piece_start, row.piece_start + len(row.piece_scales))
            matrix = np.array([np.frombuffer(decode(codes[p]), np.int8) for p in own], dtype=np.int8)
            fresh[r + start] = (replace(row, piece_start=row.piece_start + piece_start), matrix.reshape(len(own), -1))
        return fresh

    def _codes_by_piece(self, name: str, packed: dict[int, RankingRow]) -> dict[int, str]:
        pieces = [p for row in packed.values() for p in range(row.piece_start, row.piece_start + len(row.piece_scales))]
        codes: dict[int, str] = {}
        for start in range(0, len(pieces), _QUERY_LIMIT):
            part = pieces[start:start + _QUERY_LIMIT]
            codes.update((e["piece"], e["codes"]) for e in
                         self.client.query(name, filter=f"piece in {part}", output_fields=["piece", "codes"]))
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

    def __init__(self, client, name: str, near: str, size: int, stores_neighbours: bool, dimension: int,
                 generation: int) -> None:
        self.client, self.name, self._near, self._size = client, name, near, size
        self._stores, self._dimension = stores_neighbours, dimension
        # the words collection may hold words of later generations (ids from ``size`` on),
        # and the translations collection their rows (later generation numbers)
        self._own = f"id < {size}"
        self._generation = generation

    @property
    def size(self) -> int:
        return self._size

    @property
    def stores_neighbours(self) -> bool:
        return self._stores

    def _by_words(self, name: str, words: Sequence[str], fields: list[str], own: str) -> list[dict]:
        words = sorted(set(words))
        found: list[dict] = []
        for start in range(0, len(words), 1024):
            found.extend(self.client.query(name, filter=f"word in {quoted(words[start:start + 1024])} and {own}",
                                           output_fields=fields, limit=_QUERY_LIMIT))
        return found

    def ids(self, words: Sequence[str]) -> dict[str, int]:
        return {e["word"]: int(e["id"]) for e in self._by_words(self.name, words, ["word", "id"], self._own)}

    def _by_ids(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict]:
        ids = sorted({int(i) for i in ids if int(i) < self._size})
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
            found = self.client.search(self.name, data=vectors.tolist(), limit=CANDIDATES, filter=self._own,
                                       search_params={"metric_type": "IP"}, output_fields=["id"])
            for i, hits in enumerate(found):
                for j, hit in enumerate(hits):
                    ids[i, j], cosines[i, j] = hit["entity"]["id"], hit["distance"]
        ids, cosines = merge_candidates(ids, cosines)
        return [in_use_neighbours(i, c, in_use) for i, c in zip(ids.tolist(), cosines.tolist())]

    def stored_neighbours(self, words: Sequence[str], in_use: np.ndarray) -> dict[str, Neighbours]:
        if not self._stores or not words:
            return {}
        latest: dict[str, dict] = {}  # per word, the row of the latest generation up to this one
        for e in self._by_words(self._near, words, ["word", "generation", "near"], f"generation <= {self._generation}"):
            if e["word"] not in latest or e["generation"] > latest[e["word"]]["generation"]:
                latest[e["word"]] = e
        result = {}
        for e in latest.values():
            if e["near"]:
                ids, cosines = unpack_neighbours(e["near"])
                kept = len(ids) - ids.count(-1)
                result[e["word"]] = in_use_neighbours(ids[:kept], cosines[:kept], in_use)
        return result
