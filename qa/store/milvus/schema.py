"""The collections of an index on Milvus, and how rows are packed into their fields.

An index ``<base>`` is made of immutable parts, as a local index is of segments
(:mod:`qa.store.segments`), and of small generation records that list them:

==============================  ===============================================================
``<base>_sNNNNNN_chunks``        a segment's chunks, one entity each, primary key its row in the
                                 segment: the chunk vector (the ANN index: exact for a flat
                                 local segment, HNSW otherwise), text and provenance (chunk id,
                                 content id, offsets, first page, places as JSON), and
                                 ``ranking``: the chunk's ranking rows packed
                                 (:func:`pack_ranking`): piece spans, scales and window norms,
                                 the n-gram and word term rows, lengths, the language profile.
``<base>_sNNNNNN_pieces``        the segment's sentence pieces (primary key the piece's number in
                                 the segment, field ``row`` its chunk's): int8 vector codes.
``<base>_wNNNNNN_words``         the vocabulary (primary key the word): its id and vector. Word
                                 ids only grow, so one collection serves the generations of a
                                 vocabulary; a generation reads the ids below its size.
``<base>_nNNNNNN_near``          the stored translations: per word and generation that changed
                                 them, the nearest vocabulary words' ids and cosines; a
                                 generation reads, per word, the latest row not newer than itself.
``<base>_gNNNNNN_meta``          a generation's record: the segments it is made of (in row order)
                                 and its deleted rows, its words and translations collections,
                                 the manifest, document frequencies, totals and documents'
                                 places, as text blocks. The alias ``<base>`` names the current
                                 generation's record.
==============================  ===============================================================

Ragged and small numeric data go in base64 text fields, not ARRAY fields: a query reads ~50
candidates' rows in one call, and one text field per row decodes with NumPy in microseconds
where ARRAY fields become Python lists; it also works the same on Milvus 2.3 to 2.6 and
Milvus Lite. Milvus 2.3 wants a vector field in every collection: ``words``
has the words' vectors, and ``pieces``, ``near`` and ``meta`` a two-dimensional placeholder.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass

import numpy as np

from ..ranking_rows import PROFILE_TOKENS

#: what each kind of collection is called: ``<base>_<letter>NNNNNN_<part>``
KINDS = {"segment": ("s", ("chunks", "pieces")), "words": ("w", ("words",)), "near": ("n", ("near",)),
         "generation": ("g", ("meta",))}
GENERATION = re.compile(r"g(\d{6})")
ENGINE_FORMAT = 2  # 2: segments and generation records (1: a whole copy per generation)
TEXT_MAX = 65_535  # Milvus's VARCHAR limit (bytes)
META_BLOCK = 48_000  # raw bytes per meta entity: its base64 stays below TEXT_MAX
WORD_MAX = 4_096
PLACEHOLDER = [0.0, 0.0]
_HEADER = 6  # int64s: piece start, pieces, n-gram entries, word entries, n-gram length, word length


def generation_name(number: int) -> str:
    return f"g{number:06d}"


def part_name(kind: str, number: int) -> str:
    """``s000003`` (segment 3), ``w000001``, ``n000002`` or ``g000007``."""
    return f"{KINDS[kind][0]}{number:06d}"


def collection(base: str, name: str, part: str) -> str:
    """The collection of ``part`` of the segment, vocabulary or generation ``name``."""
    return f"{base}_{name}_{part}"


def parts_on(names, base: str) -> dict[str, dict[int, list[str]]]:
    """The collections of ``base`` among ``names``: {kind: {number: [collection names]}}."""
    found: dict[str, dict[int, list[str]]] = {kind: {} for kind in KINDS}
    prefix = f"{base}_"
    for name in names:
        if not name.startswith(prefix):
            continue
        middle, _, part = name[len(prefix):].partition("_")
        for kind, (letter, parts) in KINDS.items():
            if part in parts and re.fullmatch(letter + r"\d{6}", middle):
                found[kind].setdefault(int(middle[1:]), []).append(name)
    return found


def schemas(dimension: int):
    """The collections' schemas: {part: CollectionSchema}."""
    from pymilvus import DataType, MilvusClient

    def schema():
        return MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)

    chunks = schema()
    chunks.add_field("row", DataType.INT64, is_primary=True)
    chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    chunks.add_field("chunk_id", DataType.VARCHAR, max_length=256)
    chunks.add_field("doc_id", DataType.VARCHAR, max_length=256)
    chunks.add_field("start", DataType.INT64)
    chunks.add_field("end", DataType.INT64)
    chunks.add_field("page", DataType.INT64)  # -1: none
    chunks.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
    chunks.add_field("spans", DataType.VARCHAR, max_length=TEXT_MAX)
    chunks.add_field("ranking", DataType.VARCHAR, max_length=TEXT_MAX)

    pieces = schema()
    pieces.add_field("piece", DataType.INT64, is_primary=True)
    pieces.add_field("row", DataType.INT64)
    pieces.add_field("codes", DataType.VARCHAR, max_length=TEXT_MAX)
    pieces.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))

    words = schema()
    words.add_field("word", DataType.VARCHAR, is_primary=True, max_length=WORD_MAX)
    words.add_field("id", DataType.INT64)
    words.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)

    near = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
    near.add_field("key", DataType.INT64, is_primary=True)
    near.add_field("word", DataType.VARCHAR, max_length=WORD_MAX)
    near.add_field("generation", DataType.INT64)  # the generation that stored this row
    near.add_field("near", DataType.VARCHAR, max_length=TEXT_MAX)
    near.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))

    meta = schema()
    meta.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
    meta.add_field("value", DataType.VARCHAR, max_length=TEXT_MAX)
    meta.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
    return {"chunks": chunks, "pieces": pieces, "words": words, "near": near, "meta": meta}


# The chunk vectors' index by the local build's choice: exact search where the local index
# is exact (below 50k chunks by default), HNSW beyond.
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
HNSW_EF = 128


def index_params(client, part: str, chunk_index: str):
    params = client.prepare_index_params()
    if part == "chunks":
        if chunk_index == "HNSW":
            params.add_index("vector", index_type="HNSW", metric_type="IP", params=HNSW_PARAMS)
        else:
            params.add_index("vector", index_type="FLAT", metric_type="IP")
    elif part == "words":
        params.add_index("vector", index_type="FLAT", metric_type="IP")
    else:
        params.add_index("placeholder", index_type="FLAT", metric_type="L2")
    return params


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass(frozen=True)
class RankingRow:
    """One chunk's ranking rows, unpacked."""

    piece_start: int
    piece_spans: np.ndarray  # int32 [pieces, 2]
    piece_scales: np.ndarray  # float32 [pieces]
    piece_norms: np.ndarray  # float32 [pieces]
    ngram_ids: np.ndarray  # uint32
    ngram_counts: np.ndarray  # uint8
    word_ids: np.ndarray
    word_counts: np.ndarray
    ngram_length: int
    word_length: int
    profile: np.ndarray  # uint32 [PROFILE_TOKENS]


def pack_ranking(piece_start: int, spans, scales, norms, ngram_ids, ngram_counts, word_ids, word_counts,
                 ngram_length: int, word_length: int, profile) -> str:
    """A chunk's ranking rows as one base64 text (the layout :func:`unpack_ranking` reads)."""
    header = np.array([piece_start, len(scales), len(ngram_ids), len(word_ids), ngram_length, word_length], dtype="<i8")
    parts = [header, np.asarray(spans, "<i4"), np.asarray(scales, "<f4"), np.asarray(norms, "<f4"),
             np.asarray(ngram_ids, "<u4"), np.asarray(word_ids, "<u4"), np.asarray(profile, "<u4"),
             np.minimum(ngram_counts, 255).astype("u1"), np.minimum(word_counts, 255).astype("u1")]
    return encode(b"".join(p.tobytes() for p in parts))


def unpack_ranking(text: str) -> RankingRow:
    data = decode(text)
    start, pieces, ngrams, words, ngram_length, word_length = np.frombuffer(data, "<i8", _HEADER).tolist()
    at = _HEADER * 8

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal at
        values = np.frombuffer(data, dtype, count, at)
        at += values.nbytes
        return values

    spans = take("<i4", 2 * pieces).reshape(-1, 2)
    scales, norms = take("<f4", pieces), take("<f4", pieces)
    ngram_ids, word_ids, profile = take("<u4", ngrams), take("<u4", words), take("<u4", PROFILE_TOKENS)
    return RankingRow(start, spans, scales, norms, ngram_ids, take("u1", ngrams), word_ids, take("u1", words),
                      ngram_length, word_length, profile)


def pack_neighbours(ids: bytes, cosines: bytes) -> str:
    """A stored translation row (int64 ids, float32 cosines, as the local table keeps them)."""
    return encode(ids + cosines) if ids else ""


def unpack_neighbours(text: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    data = decode(text)
    n = len(data) // 12
    ids = np.frombuffer(data, "<i8", n).tolist()
    cosines = np.frombuffer(data, "<f4", n, 8 * n).tolist()
    return tuple(ids), tuple(cosines)


def meta_entities(key: str, data: bytes) -> list[dict]:
    """``data`` as meta entities ``key/0000``, ... (zlib-compressed, base64 blocks)."""
    packed = zlib.compress(data, 6)
    blocks = [packed[i:i + META_BLOCK] for i in range(0, max(len(packed), 1), META_BLOCK)]
    return [{"key": f"{key}/{i:04d}", "value": encode(b), "placeholder": PLACEHOLDER} for i, b in enumerate(blocks)]


def meta_values(entities: list[dict]) -> dict[str, bytes]:
    """The meta entities back as {key: data}."""
    blocks: dict[str, list[tuple[str, str]]] = {}
    for e in entities:
        key, _, part = e["key"].rpartition("/")
        blocks.setdefault(key, []).append((part, e["value"]))
    return {key: zlib.decompress(b"".join(decode(v) for _, v in sorted(parts))) for key, parts in blocks.items()}


def json_bytes(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")


def quoted(values) -> str:
    """A list of strings as a Milvus filter literal (``["a", "b"]``)."""
    return "[" + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"
