"""Opening an index and retrieving the passages that best match a question."""

from __future__ import annotations

import functools
import os
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from . import hybrid, lexical
from .chunkdb import CHUNKS_FILE, ChunkTable
from .chunkfeatures import ChunkFeatures
from .embedding import Embedder, load_embedder
from .errors import IndexCorruptError, IndexMismatchError, QuestionError
from .hybrid import QueryTerms, Ranking
from .manifest import Manifest
from .storage import GenerationLease, IndexDirectory
from .store import VECTORS_FILE, VectorStore
from .types import Answer, Evidence, Hit, IndexedDocument, IndexStats
from .lru import LruCache
from .vocabulary import Translations, Vocabulary

if TYPE_CHECKING:
    from .llm import LLMSettings

MAX_QUESTION_CHARS = 2000
MAX_K = 1000
RETRIEVAL_MODES = ("hybrid", "dense")
# Below this support (the question's cosine with the sentence to quote) the answerer
# abstains. Calibrated for the bundled encoder on the tuning half of XQuAD-R, answerable
# questions of all four en/es pairs against the same questions asked of an index of seeds/
# alone, minimising false abstentions plus false answers: `qa eval --calibrate` (README).
SUPPORT_THRESHOLD = 0.1977


def check_question(question: object) -> str:
    """The question stripped of surrounding whitespace, or QuestionError saying what is wrong."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None)
    if bad is not None:
        raise QuestionError(f"the question contains a control character (U+{ord(bad):04X})")
    return text


def check_k(k: object) -> int:
    """``k`` as an int, or ValueError naming the bad value."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


@dataclass(frozen=True)
class _Snapshot:
    """One generation of the index, opened; never changes once built."""

    generation: str
    manifest: Manifest
    vectors: VectorStore
    chunks: ChunkTable
    embedder: Embedder
    sources: dict[str, list[str]]  # content id -> file names
    features: ChunkFeatures
    vocabulary: Vocabulary
    neighbours: LruCache  # query word -> its Neighbours in this generation's vocabulary
    lease: GenerationLease  # held while the snapshot lives, so no writer removes its folder


@dataclass(frozen=True)
class _Reading:
    """One reading of a question: its vector, its lexical terms and its re-ranked candidates."""

    vector: np.ndarray
    terms: QueryTerms
    ranking: Ranking


class Index:
    """A loaded index. Safe to share between threads.

    When a rebuild swaps in a new generation, the next query reloads it; a query already
    running finishes on the generation it started with, so every result comes wholly from
    one version of the index.
    """

    def __init__(self, index_dir: str | os.PathLike[str] = "index", model: str | Embedder | None = None) -> None:
        self.directory = IndexDirectory(index_dir)
        self._requested = model
        self._reload_lock = threading.Lock()
        self._snapshot = self._open(None)
        self._word_vectors = LruCache()  # query word -> vector, for self._word_vectors_of
        self._word_vectors_of = self._snapshot.embedder.id

    @property
    def path(self) -> Path:
        return self.directory.path

    def _open(self, reuse: _Snapshot | None) -> _Snapshot:
        # The lease keeps writers from removing the generation while this snapshot is in use:
        # a file missing here is damage, never a rebuild's clean-up (qa.storage).
        opened = self.directory.open_generation(full=False)
        try:
            return self._open_generation(opened.name, opened.manifest, reuse, opened.lease)
        except BaseException:
            opened.lease.release()
            raise

    def _open_generation(self, generation: str, manifest: Manifest, reuse: _Snapshot | None,
                         lease: GenerationLease) -> _Snapshot:
        folder = self.directory.generation_path(generation)
        embedder = self._embedder_for(manifest, reuse.embedder if reuse else None)
        vectors = VectorStore.load(folder, manifest.vector_index)
        chunks = ChunkTable(folder / CHUNKS_FILE)
        features = ChunkFeatures(folder)
        counts = {"manifest": manifest.chunks, VECTORS_FILE: vectors.size, CHUNKS_FILE: chunks.count(),
                  "per-row files": features.rows}
        if len(set(counts.values())) != 1:
            raise IndexCorruptError(f"{folder} is inconsistent (chunk counts {counts}); run `qa index --rebuild`")
        if vectors.dimension != manifest.embedder["dimension"]:
            raise IndexCorruptError(f"{folder / VECTORS_FILE} has dimension {vectors.dimension}, "
                                    f"the manifest says {manifest.embedder['dimension']}; run `qa index --rebuild`")
        vocabulary = Vocabulary(folder)
        if len(features.words.df) != vocabulary.size:
            raise IndexCorruptError(f"{folder} has {vocabulary.size} vocabulary words but frequencies for "
                                    f"{len(features.words.df)}; run `qa index --rebuild`")
        return _Snapshot(generation, manifest, vectors, chunks, embedder, manifest.sources_by_doc(), features,
                         vocabulary, LruCache(), lease)

    def _embedder_for(self, manifest: Manifest, current: Embedder | None) -> Embedder:
        built_with = manifest.embedder
        if current is not None and current.id == built_with["id"]:
            return current
        requested = self._requested
        if requested is None:
            return load_embedder(built_with["model"])
        embedder = requested if not isinstance(requested, str) else load_embedder(requested)
        if embedder.id != built_with["id"]:
            raise IndexMismatchError(
                f"the index at {self.path} was built with {built_with['model']!r}, not {embedder.model!r}; "
                f"rebuild it with `qa index --rebuild --model {embedder.model} --index-dir {self.path}`"
            )
        return embedder

    def snapshot(self) -> _Snapshot:
        """The live generation, reloaded first if a rebuild has replaced it."""
        snapshot = self._snapshot
        if self.directory.current_generation() != snapshot.generation:
            with self._reload_lock:
                if self.directory.current_generation() != self._snapshot.generation:
                    self._snapshot = self._open(self._snapshot)
                snapshot = self._snapshot
        return snapshot

    @property
    def embedder(self) -> Embedder:
        return self.snapshot().embedder

    def retrieve(self, question: str, k: int = 5, *, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` passages that best match ``question``, best first.

        ``mode="hybrid"`` (default) re-ranks the dense candidates with sentence, n-gram and
        translated-word evidence (:mod:`qa.hybrid`); ``mode="dense"`` ranks by the
        question's cosine with the passage alone, the baseline ``qa eval`` compares with.
        """
        question = check_question(question)
        k = check_k(k)
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}")
        snapshot = self.snapshot()
        if mode == "dense":
            return _dense_search(snapshot, snapshot.embedder.encode_queries([question])[0], k)
        (reading,) = self._read(snapshot, [question], k)
        return _hits(snapshot, reading.ranking, k)

    def find_evidence(self, question: str, k: int = 5, history: Sequence[dict] = ()) -> tuple[list[Hit], list[Evidence]]:
        """The top ``k`` passages and the sentences in them that may answer, best first.

        The first sentence is the one to quote; each ``Evidence.score`` is the question's
        cosine with that sentence, the scale of :data:`SUPPORT_THRESHOLD`. ``history`` is
        the conversation so far (``{"role", "content"}`` messages). A follow-up such as
        "Where will they be built?" is also searched together with the previous question,
        and whichever reading finds the better-supported sentence wins, so a question on a new
        topic is not dragged back to the old one.
        """
        question = check_question(question)
        k = check_k(k)
        snapshot = self.snapshot()
        previous = _previous_question(history)
        readings = self._read(snapshot, [question] + ([f"{previous} {question}"] if previous else []), k)
        best = max(readings, key=lambda r: r.ranking.top_support)
        ranking = best.ranking
        hits = _hits(snapshot, ranking, k)
        translations = best.terms.translations
        # quotes come only from the passages returned, which an LLM answerer also gets
        choices = hybrid.choose_pieces(
            snapshot.features, ranking, [h.text for h in hits], translations,
            snapshot.vocabulary.words(translations.ids.tolist()),
            score_clauses=functools.partial(hybrid.best_clause_cosines, encode=snapshot.embedder.encode_passages,
                                            question=best.vector))
        evidence = []
        for choice in choices:
            hit = hits[choice.position]
            evidence.append(Evidence(hit, hit.start + choice.start, hit.start + choice.end,
                                     hit.text[choice.start:choice.end], choice.cosine))
        return hits[:k], evidence

    def _read(self, snapshot: _Snapshot, readings: list[str], k: int) -> list[_Reading]:
        """Encode the readings and their unknown words in one call, then rank each.

        A word needs a vector only if its neighbours in this generation's vocabulary are
        neither cached nor stored by the build (most words are: :mod:`qa.neighbour_table`);
        the vector comes from the word cache, the vocabulary or the encoder.
        """
        embedder = snapshot.embedder
        words = [sorted(set(lexical.words(r))) for r in readings]
        distinct = sorted(set().union(*words))
        near = snapshot.neighbours.get(distinct)
        stored = snapshot.vocabulary.stored_neighbours([w for w in distinct if w not in near],
                                                       in_use=snapshot.features.words.df)
        snapshot.neighbours.put(list(stored), list(stored.values()))
        near.update(stored)
        missing = [w for w in distinct if w not in near]
        vectors_of = self._word_cache(embedder).get(missing)
        looked_up = [w for w in missing if w not in vectors_of]
        # a build that stored neighbours stored every vocabulary word's: the rest are new words
        in_vocabulary = snapshot.vocabulary.ids(looked_up) if looked_up and not snapshot.vocabulary.stores_neighbours else {}
        vectors_of.update(zip(in_vocabulary, snapshot.vocabulary.vectors(list(in_vocabulary.values()))))
        unknown = [w for w in looked_up if w not in in_vocabulary]
        vectors = embedder.encode_queries(readings + unknown)
        vectors_of.update(zip(unknown, vectors[len(readings):]))
        self._word_cache(embedder).put(looked_up, [vectors_of[w] for w in looked_up])
        if missing:
            found = snapshot.vocabulary.neighbours(np.array([vectors_of[w] for w in missing], dtype=np.float32),
                                                   in_use=snapshot.features.words.df)
            snapshot.neighbours.put(missing, found)
            near.update(zip(missing, found))
        dense, rows = snapshot.vectors.search(vectors[:len(readings)], max(k, hybrid.CANDIDATES))
        result = []
        for i, reading in enumerate(readings):
            terms = hybrid.query_terms(reading, Translations.of([near[w] for w in words[i]]))
            found_rows = rows[i] >= 0
            ranking = hybrid.rank(snapshot.features, vectors[i], terms, rows[i][found_rows].astype(np.int64),
                                  dense[i][found_rows])
            result.append(_Reading(vectors[i], terms, ranking))
        return result

    def _word_cache(self, embedder: Embedder) -> LruCache:
        """The query-word vectors of ``embedder``, emptied if the index changed encoder."""
        if self._word_vectors_of != embedder.id:
            self._word_vectors, self._word_vectors_of = LruCache(), embedder.id
        return self._word_vectors

    def ask_stream(self, question: str, history: Sequence[dict] | None = None, *, llm: LLMSettings | None = None,
                   k: int = 5) -> Iterator[Answer]:
        """Yield the answer as it forms (text grows; the last one has ``complete=True``).

        ``history`` is the conversation so far as ``{"role", "content"}`` messages; ``llm``
        switches from the extractive answerer to an OpenAI-compatible endpoint, falling back
        to the extractive answer (with a notice) if it cannot be reached.
        """
        from .answer import answer_stream

        return answer_stream(self, question, history or (), llm=llm, k=k)

    def ask(self, question: str, history: Sequence[dict] | None = None, *, llm: LLMSettings | None = None,
            k: int = 5) -> Answer:
        """The complete answer to ``question``, with citations (see :meth:`ask_stream`)."""
        answer = None
        for answer in self.ask_stream(question, history, llm=llm, k=k):
            pass
        return answer

    def documents(self) -> list[IndexedDocument]:
        """The indexed files, by name."""
        return [
            IndexedDocument(source, e.doc_id, e.chunks, e.bytes, e.indexed_at)
            for source, e in sorted(self.snapshot().manifest.documents.items())
        ]

    def stats(self) -> IndexStats:
        """Counts, encoder and size on disk of the live generation."""
        snapshot = self.snapshot()
        m = snapshot.manifest
        return IndexStats(
            index_dir=str(self.path),
            documents=len(m.documents),
            chunks=m.chunks,
            embedder=m.embedder["model"],
            dimension=int(m.embedder["dimension"]),
            vector_index=str(m.vector_index.get("type")),
            size_bytes=self.directory.size_bytes(snapshot.generation),
            built_at=m.built_at,
            docs_dir=m.docs_dir,
        )

    def as_langchain_retriever(self, k: int = 5):
        """This index as a LangChain ``BaseRetriever`` returning ``k`` documents per query."""
        from .langchain_retriever import IndexRetriever

        return IndexRetriever(index=self, k=check_k(k))


def _dense_search(snapshot: _Snapshot, vector: np.ndarray, k: int) -> list[Hit]:
    scores, rows = snapshot.vectors.search(vector[None, :], k)
    return _hits_of(snapshot, [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0])


def _hits(snapshot: _Snapshot, ranking: Ranking, k: int) -> list[Hit]:
    return _hits_of(snapshot, list(zip(ranking.rows[:k].tolist(), ranking.scores[:k].tolist())))


def _hits_of(snapshot: _Snapshot, pairs: list[tuple[int, float]]) -> list[Hit]:
    stored = snapshot.chunks.get([r for r, _ in pairs])
    return [
        Hit(chunk_id=c.id, doc_id=c.doc_id, source=snapshot.sources[c.doc_id][0], start=c.start, end=c.end,
            page=c.page, text=c.text, score=score)
        for c, (_, score) in zip(stored, pairs)
    ]


def _previous_question(history: Sequence[dict]) -> str | None:
    for message in reversed(list(history or ())):
        if message.get("role") == "user" and str(message.get("content", "")).strip():
            return str(message["content"]).strip()
    return None


_loaded: dict[tuple[str, str | None], Index] = {}
_loaded_lock = threading.Lock()


def load(index_dir: str | os.PathLike[str] = "index", model: str | Embedder | None = None) -> Index:
    """Open the index at ``index_dir``.

    Raises :class:`~qa.errors.IndexNotFoundError` if there is none and
    :class:`~qa.errors.IndexMismatchError` if ``model`` is not the one it was built with.
    """
    return Index(index_dir, model=model)


def retrieve(question: str, k: int = 5, index_dir: str | os.PathLike[str] = "index", model: str | None = None) -> list[Hit]:
    """One-liner retrieval; the index is loaded on first use and kept for later calls."""
    key = (str(Path(index_dir).resolve()), model)
    with _loaded_lock:
        index = _loaded.get(key)
        if index is None:
            index = _loaded[key] = Index(index_dir, model=model)
    return index.retrieve(question, k=k)
