"""Opening an index and retrieving the passages that best match a question."""

from __future__ import annotations

import functools
import os
import threading
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from . import ranking as hybrid
from ..text import lexical
from . import verification
from ..store.chunk_table import CHUNKS_FILE, ChunkTable
from ..store.ranking_rows import ChunkFeatures
from ..encode.embedder import Embedder, load_embedder
from ..errors import IndexCorruptError, IndexMismatchError, QuestionError
from .ranking import QueryTerms, Ranking
from ..store.manifest import Manifest
from ..store.folder import GenerationLease, IndexDirectory
from ..store.vectors.faiss_index import VECTORS_FILE, VectorStore
from .cache import LruCache
from ..store.neighbour_table import Neighbours
from .question_forms import QuestionForm, answer_kind, is_cue_word, read_question
from ..types import Answer, Evidence, EvidenceSignals, Findings, Hit, IndexedDocument, IndexStats, Verdict
from ..store.vocabulary import MIN_TRANSLATION_COSINE, Translations, Vocabulary

if TYPE_CHECKING:
    from ..answer.llm import LLMSettings

MAX_QUESTION_CHARS = 2000
MAX_K = 1000
RETRIEVAL_MODES = ("hybrid", "dense")


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
    words: list[str]  # the distinct words whose translations ``terms`` holds, in group order
    neighbours: dict[str, Neighbours]  # each word's nearest vocabulary words in this generation


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
        # a file missing here is damage, never a rebuild's clean-up (qa.store.folder).
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
        translated-word evidence (:mod:`qa.search.ranking`); ``mode="dense"`` ranks by the
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

    def find_evidence(self, question: str, k: int = 5, history: Sequence[dict] = ()) -> Findings:
        """The top ``k`` passages, the sentences in them that may answer (best first: the first
        is the one to quote), and the verdict on whether it answers (:mod:`qa.search.verification`).

        ``history`` is the conversation so far (``{"role", "content"}`` messages). A question
        that refers back (a pronoun, "and ...?", "else": :mod:`qa.search.question_forms`) is also
        read together with the earlier questions it continues, and that reading is taken if
        the verdict on it is more confident, and it is supported by the new question's own
        words too, never by the earlier turns' alone. A self-contained question gets exactly
        the answer it would get asked alone.
        """
        question = check_question(question)
        k = check_k(k)
        snapshot = self.snapshot()
        alone = self._findings(snapshot, question, question, k, "alone")
        earlier = _earlier_questions(history)
        if not earlier or not read_question(question).refers_back:
            return alone
        with_context = self._findings(snapshot, " ".join([*earlier, question]), question, k, "with context",
                                      quoted_before=_earlier_answers(history))
        if (with_context.verdict.supported and with_context.verdict.confidence >= verification.CONTEXT_CONFIDENCE
                and with_context.verdict.confidence > alone.verdict.confidence):
            return with_context
        return alone

    def _findings(self, snapshot: _Snapshot, reading_text: str, question: str, k: int, reading: str,
                  quoted_before: str = "") -> Findings:
        """Search ``reading_text`` and judge its first evidence sentence as an answer to
        ``question``. When the two differ (a follow-up read with the earlier questions), the
        reading finds the passages, and ``question`` alone picks the sentence in them,
        leaving out sentences found in ``quoted_before`` (the earlier answers)."""
        if reading_text == question:
            (found,) = self._read(snapshot, [reading_text], k)
            chooser = found
        else:
            found, chooser = self._read(snapshot, [reading_text, question], k)
        ranking = found.ranking
        hits = _hits(snapshot, ranking, k)
        if chooser is not found:  # the same passages, their sentences scored against the question itself
            own_cosines = snapshot.features.piece_cosines(ranking.piece_rows, chooser.vector)
            choosing = replace(ranking, piece_cosines=own_cosines)
        else:
            choosing = ranking
        translations = chooser.terms.translations
        # quotes come only from the passages returned, which an LLM answerer also gets
        choices = hybrid.choose_pieces(
            snapshot.features, choosing, [h.text for h in hits], translations,
            snapshot.vocabulary.words(translations.ids.tolist()),
            score_clauses=functools.partial(hybrid.best_clause_cosines, encode=snapshot.embedder.encode_passages,
                                            question=chooser.vector))
        # support is the reading's cosine: the choice's own unless the question chose in its place
        reading_cosine = _piece_cosines(snapshot, ranking) if chooser is not found else None
        evidence = []
        for choice in choices:
            hit = hits[choice.position]
            text = hit.text[choice.start:choice.end]
            if quoted_before and " ".join(text.split()) in quoted_before:
                continue  # a follow-up moves on: the earlier answer already gave this sentence
            support = (choice.cosine if reading_cosine is None
                       else reading_cosine[(choice.position, choice.start, choice.end)])
            evidence.append(Evidence(hit, hit.start + choice.start, hit.start + choice.end, text, support))
        return Findings(hits[:k], evidence, self._verdict(snapshot, found, hits, evidence, question, reading))

    def _verdict(self, snapshot: _Snapshot, found: _Reading, hits: list[Hit], evidence: list[Evidence],
                 question: str, reading: str) -> Verdict:
        """The verdict on the first evidence sentence (:mod:`qa.search.verification`)."""
        if not evidence:
            return Verdict(False, float("-inf"), reading)
        first = evidence[0]
        position = next(i for i, hit in enumerate(hits) if hit is first.hit)
        rarity_of = getattr(snapshot.embedder, "word_rarity", None)
        if rarity_of is None:
            return verification.judge_by_support(first.score, reading)
        # Question and reference words of every language are not content: left out, they
        # cannot weigh as rare ("dónde" costs 20 nats, as much as a name).
        words = [w for w in found.words if not is_cue_word(w)]
        rarity = rarity_of(words)
        translated = [bool(found.neighbours[w].cosines) and found.neighbours[w].cosines[0] >= MIN_TRANSLATION_COSINE
                      for w in words]
        question_vectors = self._question_word_vectors(snapshot, words)
        passage_ids = snapshot.features.word_ids_of(int(found.ranking.rows[position]))
        passage_vectors = snapshot.vocabulary.vectors(passage_ids.tolist())
        sentence_ids = set(snapshot.vocabulary.ids(sorted(set(lexical.words(first.text)))).values())
        in_sentence = np.isin(passage_ids, np.array(sorted(sentence_ids), dtype=passage_ids.dtype))
        cosines = question_vectors @ passage_vectors.T if len(passage_ids) else np.zeros((len(words), 0), np.float32)
        passage_best = cosines.max(axis=1) if cosines.shape[1] else np.zeros(len(words), np.float32)
        sentence_best = cosines[:, in_sentence].max(axis=1) if in_sentence.any() else np.zeros(len(words), np.float32)
        scores = found.ranking.scores
        runner_up = max((float(x) for i, x in enumerate(scores.tolist()) if i != position), default=0.0)
        signals = EvidenceSignals(
            support=first.score,
            fused=float(scores[position]),
            margin=float(scores[position]) - runner_up,
            language_gate=found.ranking.language_gate,
            kind_mismatch=verification.kind_mismatch(answer_kind(question), first.text),
            **verification.word_signals(
                [verification.QuestionWord(float(r), t) for r, t in zip(rarity.tolist(), translated)],
                passage_best, sentence_best),
            same_document=verification.same_document(first.hit, hits),
        )
        verdict = verification.judge(signals, reading)
        if reading == "with context" and verdict.supported and not self._own_support(
                snapshot, read_question(question), first.text, passage_vectors):
            return replace(verdict, supported=False)
        return verdict

    def _own_support(self, snapshot: _Snapshot, form: QuestionForm, sentence: str, passage_vectors: np.ndarray) -> bool:
        """Whether a follow-up supports, by itself, what its reading with the earlier questions
        found: one of its own rarer words (not a cue word) matches a word of the passage, or,
        if it has none ("And when?", "¿Y quién más?"), the sentence can hold the kind of
        answer it asks for."""
        own = list(dict.fromkeys(lexical.words(" ".join(form.own_words))))
        if own:
            own = [w for w, r in zip(own, snapshot.embedder.word_rarity(own).tolist())
                   if r >= verification.RARE_WORD_COST]
        if not own:
            return verification.kind_mismatch(form.kind, sentence) == 0.0
        if not len(passage_vectors):
            return False
        best = float((self._question_word_vectors(snapshot, own) @ passage_vectors.T).max())
        return best >= verification.OWN_WORD_MATCH

    def _question_word_vectors(self, snapshot: _Snapshot, words: list[str]) -> np.ndarray:
        """Vectors of question words: cached, the vocabulary's, or encoded (once per word)."""
        cache = self._word_cache(snapshot.embedder)
        vectors_of = cache.get(words)
        missing = [w for w in words if w not in vectors_of]
        in_vocabulary = snapshot.vocabulary.ids(missing) if missing else {}
        vectors_of.update(zip(in_vocabulary, snapshot.vocabulary.vectors(list(in_vocabulary.values()))))
        unknown = [w for w in missing if w not in in_vocabulary]
        if unknown:
            vectors_of.update(zip(unknown, snapshot.embedder.encode_queries(unknown)))
        cache.put(missing, [vectors_of[w] for w in missing])
        if not words:
            return np.empty((0, snapshot.embedder.dimension), dtype=np.float32)
        return np.array([vectors_of[w] for w in words], dtype=np.float32)

    def _read(self, snapshot: _Snapshot, readings: list[str], k: int) -> list[_Reading]:
        """Encode the readings and their unknown words in one call, then rank each.

        A word needs a vector only if its neighbours in this generation's vocabulary are
        neither cached nor stored by the build (most words are: :mod:`qa.store.neighbour_table`);
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
            result.append(_Reading(vectors[i], terms, ranking, words[i], {w: near[w] for w in words[i]}))
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
        from ..answer.answerer import answer_stream

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
        snapshot = self.snapshot()
        places = snapshot.chunks.places_by_document()
        return [
            IndexedDocument(source, e.doc_id, e.chunks, e.bytes, e.indexed_at, places.get(e.doc_id, ""))
            for source, e in sorted(snapshot.manifest.documents.items())
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
        from ..langchain_retriever import IndexRetriever

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
            page=c.page, text=c.text, score=score, last_page=c.spans[-1].page if c.spans else c.page, spans=c.spans)
        for c, (_, score) in zip(stored, pairs)
    ]


def _piece_cosines(snapshot: _Snapshot, ranking: Ranking) -> dict[tuple[int, int, int], float]:
    """(position in the ranking, start, end in the chunk) of each candidate piece -> its cosine."""
    spans = np.asarray(snapshot.features.piece_spans[ranking.piece_rows]).tolist()
    return {(int(p), int(a), int(b)): float(c) for p, (a, b), c in
            zip(ranking.piece_owner.tolist(), spans, ranking.piece_cosines.tolist())}


def _earlier_answers(history: Sequence[dict]) -> str:
    """The earlier answers' text, whitespace collapsed (their quotes are verbatim sentences)."""
    return " ".join(" ".join(str(m.get("content", "")).split()) for m in history or () if m.get("role") == "assistant")


def _earlier_questions(history: Sequence[dict], limit: int = 3) -> list[str]:
    """The earlier questions a follow-up continues, oldest first: the last one, and before it
    those it continued in turn (while each one refers back), at most ``limit``."""
    asked = [str(m.get("content", "")).strip() for m in history or () if m.get("role") == "user"]
    asked = [q for q in asked if q]
    chosen: list[str] = []
    for earlier in reversed(asked):
        chosen.insert(0, earlier)
        if len(chosen) == limit or not read_question(earlier).refers_back:
            break
    return chosen


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
