"""The public face of the library: :class:`Index` (a loaded index), :func:`load`,
:func:`retrieve`, and :func:`open_or_build` (the app's policy for a missing or outdated index).

:class:`Index` is a facade: following rebuilds is :mod:`qa.search.snapshot`'s, checking the
question :mod:`qa.search.checks`', searching :mod:`qa.search.searcher`'s, choosing evidence
:mod:`qa.search.evidence`'s and writing the answer :mod:`qa.answer`'s.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import replace
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Iterator, Sequence

from .encode.base import Embedder
from .errors import IndexFormatError, IndexNotFoundError
from .search import evidence, searcher
from .search.checks import check_k, check_mode, check_question
from .search.snapshot import LiveSnapshot, Snapshot
from .search.translations import WordVectors
from .store.document_table import DocumentDict
from .store.locations import is_engine, open_generations
from .types import Answer, Findings, Hit, IndexedDocument, IndexStats, SearchTrace

if TYPE_CHECKING:
    from .answer.llm import LLMSettings
    from .types import BuildReport


class Index:
    """A loaded index. Safe to share between threads.

    When a rebuild swaps in a new generation, the next query reloads it; a query already
    running finishes on the generation it started with, so every result comes wholly from
    one version of the index.
    """

    def __init__(self, index_dir: str | os.PathLike[str] = "index", model: str | Embedder | None = None) -> None:
        self._live = LiveSnapshot(open_generations(index_dir), model)
        self._word_vectors = WordVectors()

    @property
    def location(self) -> str:
        """Where the index lives: its folder, or a vector engine's URI."""
        return self._live.generations.location

    @property
    def path(self) -> Path:
        """The index folder (an index on a vector engine has none: see :attr:`location`)."""
        if is_engine(self.location):
            raise ValueError(f"{self.location} is not a folder")
        return Path(self.location)

    def snapshot(self) -> Snapshot:
        """The live generation (:class:`~qa.search.snapshot.Snapshot`), reloaded first if a
        rebuild has replaced it: its manifest, encoder and store parts."""
        return self._live.current()

    @property
    def embedder(self) -> Embedder:
        return self.snapshot().embedder

    def retrieve(self, question: str, k: int = 5, *, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` passages that best match ``question``, best first.

        ``mode="hybrid"`` (default) re-ranks the dense candidates with sentence, n-gram and
        translated-word evidence (:mod:`qa.search.ranking`); ``mode="dense"`` ranks by the
        question's cosine with the passage alone, the baseline ``qa eval`` compares with.
        """
        question, k, mode = check_question(question), check_k(k), check_mode(mode)
        return self._search(self.snapshot(), question, k, mode)[0]

    def trace(self, question: str, k: int = 5, *, mode: str = "hybrid") -> SearchTrace:
        """:meth:`retrieve`, with what happened on the way: the vector index's candidates
        before re-ranking, each hit's sentences with their cosines with the question, and the
        seconds each stage took. The supported hook for evaluation and benchmarks."""
        question, k, mode = check_question(question), check_k(k), check_mode(mode)
        snapshot = self.snapshot()
        timings: dict[str, float] = {}
        started = perf_counter()
        hits, rows, vector, candidates = self._search(snapshot, question, k, mode, timings)
        timings["total"] = perf_counter() - started
        return SearchTrace(question, mode, hits, candidates, searcher.sentences_of(snapshot, rows, vector), timings)

    def _search(self, snapshot: Snapshot, question: str, k: int, mode: str, timings: dict[str, float] | None = None):
        """(hits, their rows, the question's vector, the dense (row, cosine) candidates)."""
        if mode == "dense":
            encoding = perf_counter()
            vector = snapshot.embedder.encode_queries([question])[0]
            if timings is not None:
                timings["encode"] = perf_counter() - encoding
            candidates = searcher.dense_candidates(snapshot, vector, k, timings)
            return searcher.hits_of(snapshot, candidates, timings), [r for r, _ in candidates], vector, candidates
        (reading,) = searcher.read(snapshot, self._word_vectors, [question], k, timings)
        candidates = list(zip(reading.candidates[0].tolist(), reading.candidates[1].tolist()))
        return (searcher.hits(snapshot, reading.ranking, k, timings), reading.ranking.rows[:k].tolist(), reading.vector,
                candidates)

    def find_evidence(self, question: str, k: int = 5, history: Sequence[dict] = ()) -> Findings:
        """The top ``k`` passages, the sentences in them that may answer (best first: the first
        is the one to quote), and the verdict on whether it answers (:mod:`qa.search.verification`).

        ``history`` is the conversation so far (``{"role", "content"}`` messages). A question
        that refers back (a pronoun, "and ...?", "else": :mod:`qa.search.question_forms`) is
        also read together with the earlier questions it continues (:mod:`qa.search.evidence`).
        """
        question, k = check_question(question), check_k(k)
        return evidence.find_evidence(self.snapshot(), self._word_vectors, question, k, history)

    def readings(self, question: str, k: int = 5, history: Sequence[dict] = ()) -> evidence.Readings:
        """Both readings :meth:`find_evidence` chooses between (alone, and with the earlier
        questions when the question refers back), for calibrating that choice
        (:func:`qa.search.evidence.choose`): the supported hook, as :meth:`trace` is for search."""
        question, k = check_question(question), check_k(k)
        return evidence.read_in_conversation(self.snapshot(), self._word_vectors, question, k, history)

    def ask_stream(self, question: str, history: Sequence[dict] | None = None, *, llm: LLMSettings | None = None,
                   k: int = 5) -> Iterator[Answer]:
        """Yield the answer as it forms (text grows; the last one has ``complete=True``).

        ``history`` is the conversation so far as ``{"role", "content"}`` messages; ``llm``
        switches from the extractive answerer to an OpenAI-compatible endpoint, falling back
        to the extractive answer (with a notice) if it cannot be reached.
        """
        from .answer.answerer import answer_stream

        history = history or ()
        findings = self.find_evidence(question, k=k, history=history)
        return answer_stream(findings, question, history, llm=llm)

    def ask(self, question: str, history: Sequence[dict] | None = None, *, llm: LLMSettings | None = None,
            k: int = 5) -> Answer:
        """The complete answer to ``question``, with citations (see :meth:`ask_stream`)."""
        answer = None
        for answer in self.ask_stream(question, history, llm=llm, k=k):
            pass
        return answer

    def documents(self, limit: int | None = None) -> list[IndexedDocument]:
        """The indexed files, by name (the first ``limit`` of them)."""
        snapshot = self.snapshot()
        places = snapshot.generation.chunks.places_by_document()
        return [replace(entry, places=places.get(entry.doc_id, ""))
                for entry in snapshot.manifest.documents.all(limit).values()]

    def passages(self) -> list[Hit]:
        """Every indexed passage in index order, with score 0 (for baselines that rank them all)."""
        snapshot = self.snapshot()
        documents = DocumentDict(snapshot.manifest.documents.all())  # one read of the table
        sources = documents.sources_of(entry.doc_id for entry in documents.values())
        # by document, not range(count()): rows need not be consecutive (deleted rows keep their numbers)
        _, chunks = snapshot.generation.chunks.of_documents(sources)
        return [Hit.of(chunk, sources[chunk.doc_id][0], 0.0) for chunk in chunks]

    def stats(self) -> IndexStats:
        """Counts, encoder and size on disk of the live generation."""
        snapshot = self.snapshot()
        m = snapshot.manifest
        return IndexStats(
            index_dir=self.location,
            documents=len(m.documents),
            chunks=m.chunks,
            embedder=m.embedder["model"],
            dimension=int(m.embedder["dimension"]),
            vector_index=str(m.vector_index.get("type")),
            size_bytes=self._live.generations.size_bytes(snapshot.name),
            built_at=m.built_at,
            docs_dir=m.docs_dir,
        )

    def as_langchain_retriever(self, k: int = 5):
        """This index as a LangChain ``BaseRetriever`` returning ``k`` documents per query."""
        from .langchain_retriever import IndexRetriever

        return IndexRetriever(index=self, k=check_k(k))


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
    key = (str(index_dir) if is_engine(index_dir) else str(Path(index_dir).resolve()), model)
    with _loaded_lock:
        index = _loaded.get(key)
        if index is None:
            index = _loaded[key] = Index(index_dir, model=model)
    return index.retrieve(question, k=k)


def open_or_build(docs_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], *, model: str | None = None,
                  say=functools.partial(print, flush=True), **build_options) -> tuple[Index, BuildReport | None]:
    """The index at ``index_dir``, built from ``docs_dir`` first if there is none (the folder
    is created if missing), or rebuilt if an older qa wrote it (an index is derived data: its
    own model is kept). Returns the index and the build's report (None if none ran);
    ``say`` gets a line about each step; ``build_options`` go to :func:`qa.build_index`."""
    from .build.builder import build_index

    docs, where = Path(docs_dir), index_dir if is_engine(index_dir) else Path(index_dir)
    try:
        return load(where, model=model), None
    except IndexNotFoundError:
        if not docs.exists():
            docs.mkdir(parents=True)
            say(f"Created an empty documents folder {docs}: add files there or upload them in the app.")
        say(f"No index at {where}: building it from {docs} ...")
        report = build_index(docs, where, model=model, **build_options)
    except IndexFormatError as exc:
        say(f"{exc.args[0].split(';')[0]}: rebuilding it from {docs} ...")
        report = build_index(docs, where, model=model, rebuild=True, **build_options)
    return load(where, model=model), report
