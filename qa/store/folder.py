"""Crash-safe layout of an index directory.

::

    index/
      CURRENT            {"generation": "gen-000007", "manifest_sha256": "..."}
      gen-000007/        manifest.json, vectors.faiss, chunks.sqlite (never modified)
      .lock              held by the one process writing

A build writes a complete new generation into a temporary folder beside the live one,
fsyncs every file and the folder, renames it into place and only then replaces CURRENT
with an atomic rename. A crash at any point leaves the previous CURRENT and generation
intact; leftovers are removed by the next writer. Readers follow CURRENT, so they see the
old index or the new one, never half of each.

A reader holds a shared ``flock`` on the generation folder it opened (a
:class:`GenerationLease`) for as long as it uses it; a writer removes an old generation only
if it can take that lock exclusively, so a generation is never removed under a reader that
is opening or using it. A generation still in use is removed by the first build after its
last reader has moved on.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import IndexCorruptError, IndexLockedError, IndexNotFoundError, QAError
from ..checksums import sha256_file
from ..recently_used import RecentlyUsed
from .document_table import DocumentTable, write_documents
from .manifest import MANIFEST_FILE, FileEntry, Manifest
from .segments import SEGMENT_PREFIX

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
# Files up to this size get their full SHA-256 checked on every open (about 35 ms); larger
# ones get their size and a digest of sampled blocks (see _sample_sha256), because hashing
# the ~2 GB of a 1M-chunk index would take longer than the 2 s its opening may cost. The
# full check of every file runs when it is written (its checksum is made from the bytes
# written), before a build merges segments (of the files it reads) and on demand (`qa info
# --verify`); a build checks the generation it starts from by samples only.
FULL_CHECK_MAX_BYTES = 64 << 20
_SAMPLE_BLOCK = 64 << 10
_SAMPLE_BLOCKS = 64
_GENERATION_PREFIX = "gen-"
_TEMP_PREFIX = ".tmp-"
_OPEN_ATTEMPTS = 20  # generation swaps a reader follows before giving up


class GenerationLease:
    """A shared lock on one generation folder: while it is held, no writer removes the folder.

    Released by :meth:`release` or when the lease is garbage-collected, so a snapshot of an
    index that holds it keeps its generation for exactly as long as someone uses the snapshot.
    """

    def __init__(self, descriptor: int) -> None:
        self._release = weakref.finalize(self, os.close, descriptor)

    def release(self) -> None:
        """Drop the lock now (closing the descriptor releases the flock)."""
        self._release()


def _lease(folder: Path) -> GenerationLease | None:
    """A shared lock on ``folder``, or None if the folder is gone. Waits while a writer holds
    it exclusively, which only a writer removing the folder does."""
    import fcntl

    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
    except BaseException:
        os.close(descriptor)
        raise
    return GenerationLease(descriptor)


@dataclass(frozen=True)
class OpenedGeneration:
    """The live generation as a reader opened it: its name, verified manifest and the lease
    that keeps writers from removing it."""

    name: str
    manifest: Manifest
    lease: GenerationLease


class IndexDirectory:
    """An index folder: its current generation, atomic commits and the writer lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # ---- reading ----

    def current_generation(self) -> str | None:
        """The name of the live generation, or None if the folder holds no index."""
        pointer = self._read_pointer()
        return None if pointer is None else pointer["generation"]

    def _read_pointer(self) -> dict | None:
        path = self.path / CURRENT_FILE
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from exc
        try:
            pointer = json.loads(raw)
            name = pointer["generation"]
            if not (isinstance(name, str) and name.startswith(_GENERATION_PREFIX) and "/" not in name):
                raise ValueError(f"bad generation name {name!r}")
            str(pointer["manifest_sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path} is damaged ({exc}); run `qa index --rebuild`") from exc
        return pointer

    def open_manifest(self, full: bool = True) -> tuple[str, Manifest]:
        """The live generation's name and verified manifest.

        Every data file is checked against the size and SHA-256 the manifest records, so a
        truncated or altered file is reported by name instead of crashing the reader. With
        ``full=False`` (opening for queries), files larger than ``FULL_CHECK_MAX_BYTES`` are
        checked by size and sampled blocks instead: that catches truncation, a replaced
        file and damaged headers at a fixed cost, but not every flipped bit in the middle.
        """
        opened = self.open_generation(full)
        opened.lease.release()
        return opened.name, opened.manifest

    def open_generation(self, full: bool = True, for_update: bool = False) -> OpenedGeneration:
        """The live generation, verified as :meth:`open_manifest` does, with a lease on it.

        ``for_update``: a build's check of the generation it starts from, at a fixed cost per
        file. The files of its segments (``seg-*/``) by size: the build links them unread, with
        the checksums they were written with, which readers go on checking (a merge checks
        in full those it reads). Every other file (word tables, statistics: those it copies
        and changes) by its size and sampled blocks, whatever its size.

        The lease is taken before the files are checked and CURRENT is read again under it:
        if a writer swapped generations meanwhile, the new one is opened instead. So a file
        found missing or altered here is damage, not a writer's clean-up.
        """
        for _ in range(_OPEN_ATTEMPTS):
            pointer = self._read_pointer()
            if pointer is None:
                raise IndexNotFoundError(f"no index at {self.path}; build one with `qa index DOCS_DIR --index-dir {self.path}`")
            folder = self.path / pointer["generation"]
            lease = _lease(folder)
            if lease is None or self._read_pointer() != pointer:
                if lease is not None:
                    lease.release()
                if self._read_pointer() != pointer:
                    continue  # a writer swapped generations (and may have removed this one): follow it
                raise IndexCorruptError(f"{folder / MANIFEST_FILE} is missing; run `qa index --rebuild`")
            try:
                return OpenedGeneration(pointer["generation"],
                                        self._verified_manifest(folder, pointer, full, for_update), lease)
            except BaseException:
                lease.release()
                raise
        raise IndexCorruptError(f"{self.path} keeps changing under the reader; try again")

    def _verified_manifest(self, folder: Path, pointer: dict, full: bool, for_update: bool) -> Manifest:
        try:
            manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            raise IndexCorruptError(f"{folder / MANIFEST_FILE} is missing; run `qa index --rebuild`") from None
        if hashlib.sha256(manifest_bytes).hexdigest() != pointer["manifest_sha256"]:
            raise IndexCorruptError(f"{folder / MANIFEST_FILE} does not match the checksum in "
                                    f"{self.path / CURRENT_FILE}; one of them is damaged; run `qa index --rebuild`")
        manifest = Manifest.from_json(manifest_bytes.decode("utf-8", "replace"), str(folder / MANIFEST_FILE), folder)
        for name, expected in manifest.files.items():
            if for_update:
                _verify_file(folder / name, expected, full=False, samples=True, size_only=name.startswith(SEGMENT_PREFIX))
            else:
                _verify_file(folder / name, expected, full)
        if isinstance(manifest.documents, DocumentTable):
            manifest.documents.open()
        return manifest

    def verify_files(self, generation: str, manifest: Manifest, under: tuple[str, ...]) -> None:
        """Check the whole checksum of each of ``generation``'s files whose name starts with
        one of ``under`` (a build does before it reads every row of those files to merge them)."""
        folder = self.generation_path(generation)
        for name, expected in manifest.files.items():
            if name.startswith(under):
                _verify_file(folder / name, expected, full=True)

    def built_with_model(self) -> str | None:
        """The ``--model`` name the live generation was built with, read without any check
        (None if there is no index or it cannot be read): only a hint, e.g. to start loading
        the encoder while the rest opens; opening the index reports any problem."""
        try:
            generation = self.current_generation()
            if generation is None:
                return None
            manifest = json.loads((self.generation_path(generation) / MANIFEST_FILE).read_text(encoding="utf-8"))
            return str(manifest["embedder"]["model"])
        except (OSError, ValueError, KeyError, TypeError, QAError):
            return None

    def generation_path(self, generation: str) -> Path:
        return self.path / generation

    # ---- writing ----

    @contextlib.contextmanager
    def write_lock(self, timeout: float = 0.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the single-writer lock, waiting up to ``timeout`` seconds for it.

        The lock is an advisory ``flock`` on ``.lock``: the kernel releases it when its
        holder dies, so a lock left by a killed process never blocks the next writer.
        """
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_FILE, "a+", encoding="utf-8")
        try:
            deadline = time.monotonic() + timeout
            announced = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    holder = _lock_holder(self.path / LOCK_FILE)
                    if time.monotonic() >= deadline:
                        raise IndexLockedError(
                            f"another process ({holder}) is writing the index at {self.path}; "
                            "wait for it to finish or pass a longer --wait"
                        ) from None
                    if on_wait and not announced:
                        on_wait(f"waiting for {holder} to finish writing {self.path}")
                        announced = True
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the flock

    def new_workspace(self) -> Path:
        """A fresh private folder beside the live generation to write a build into."""
        path = self.path / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        return path

    def commit(self, workspace: Path, manifest: Manifest, previous: OpenedGeneration | None = None) -> str:
        """Seal ``workspace`` with ``manifest`` (its JSON, and its documents' table) and make it
        the live generation; returns its name.

        A file hard-linked from the ``previous`` generation (the same file, at the same place)
        keeps the size and checksums its manifest records, unhashed, and needs no fsync: it
        was checked and made durable when it was written. Every other file is hashed.
        Call with the write lock held.
        """
        carried = _carried_entries(self.generation_path(previous.name), previous.manifest) if previous else {}
        write_documents(workspace, manifest.documents)
        files = sorted((p.relative_to(workspace).as_posix(), p) for p in workspace.rglob("*") if p.is_file())
        manifest.files = {}
        written: list[Path] = []
        for name, path in files:
            if name == MANIFEST_FILE:
                continue
            entry = carried.get(name)
            if entry is not None and entry[0] == _identity(path):
                manifest.files[name] = entry[1]
            else:
                manifest.files[name] = FileEntry(bytes=path.stat().st_size, sha256=sha256_file(path),
                                                 sample_sha256=_sample_sha256(path))
                written.append(path)
        manifest_bytes = manifest.to_json().encode("utf-8")
        (workspace / MANIFEST_FILE).write_bytes(manifest_bytes)
        for path in [*written, workspace / MANIFEST_FILE]:
            _fsync_file(path)
        for folder in sorted({p.parent for _, p in files} | {workspace}, key=lambda f: -len(f.parts)):
            _fsync_dir(folder)

        name = self._next_generation_name()
        os.rename(workspace, self.path / name)
        _fsync_dir(self.path)

        pointer = json.dumps({"generation": name, "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()})
        pending = self.path / f"{CURRENT_FILE}.{uuid.uuid4().hex}.tmp"
        pending.write_text(pointer + "\n", encoding="utf-8")
        _fsync_file(pending)
        os.replace(pending, self.path / CURRENT_FILE)
        _fsync_dir(self.path)
        return name

    def remove_stale(self) -> None:
        """Delete unfinished workspaces, and generations CURRENT no longer names that no
        reader holds a lease on (those wait for a later build).

        Call with the write lock held.
        """
        try:
            live = self.current_generation()
        except IndexCorruptError:
            live = None
        for entry in self.path.iterdir():
            name = entry.name
            stale_temp = name.startswith(_TEMP_PREFIX) or (name.startswith(CURRENT_FILE + ".") and name.endswith(".tmp"))
            old_generation = name.startswith(_GENERATION_PREFIX) and name != live and live is not None
            if old_generation and entry.is_dir():
                _remove_unleased(entry)
            elif stale_temp or old_generation:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _next_generation_name(self) -> str:
        numbers = [
            int(p.name[len(_GENERATION_PREFIX):])
            for p in self.path.glob(f"{_GENERATION_PREFIX}*")
            if p.name[len(_GENERATION_PREFIX):].isdigit()
        ]
        return f"{_GENERATION_PREFIX}{max(numbers, default=0) + 1:06d}"

    def size_bytes(self, generation: str) -> int:
        """Bytes of one generation's files (files it shares with another generation included)."""
        return sum(p.stat().st_size for p in self.generation_path(generation).rglob("*") if p.is_file())


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def _carried_entries(folder: Path, manifest: Manifest) -> dict[str, tuple[tuple[int, int], FileEntry]]:
    """The previous generation's files with their manifest entries and the identity of the
    file on disk: a new generation's file of the same identity is that very file."""
    carried = {}
    for name, entry in manifest.files.items():
        try:
            carried[name] = (_identity(folder / name), entry)
        except OSError:
            continue
    return carried


def _remove_unleased(folder: Path) -> None:
    """Remove a generation folder unless a reader holds a lease on it."""
    import fcntl

    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a reader is using it
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(descriptor)


def _verify_file(path: Path, expected: FileEntry, full: bool, samples: bool = False, size_only: bool = False) -> None:
    """Check ``path`` against its manifest entry: its size, then its whole SHA-256 (``full``,
    or a file up to FULL_CHECK_MAX_BYTES), else its sampled blocks (a larger one, or any with
    ``samples``); ``size_only``: its size alone.

    A file this process already found sound is not hashed again while its identity (device,
    inode, size, modification time) is the same: a new generation hard-links the segments it
    keeps, so a reader that reopens after an update hashes only what the update wrote (not
    the change time: linking changes it). Only files last modified VERIFIED_SETTLE_SECONDS
    before the check are remembered (a write within the file system's clock tick may leave
    the modification time unchanged)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; run `qa index --rebuild`") from None
    size = stat.st_size
    if size != expected.bytes:
        raise IndexCorruptError(
            f"{path} has {size} bytes, the manifest says {expected.bytes}; run `qa index --rebuild`"
        )
    if size_only:
        return
    whole = not (samples or not full and size > FULL_CHECK_MAX_BYTES) or expected.sample_sha256 is None
    identity = (stat.st_dev, stat.st_ino, size, stat.st_mtime_ns, expected.sha256, whole)
    if _verified.get([identity]) or (not whole and _verified.get([identity[:-1] + (True,)])):
        return
    matches = sha256_file(path) == expected.sha256 if whole else _sample_sha256(path) == expected.sample_sha256
    if not matches:
        raise IndexCorruptError(f"{path} does not match its checksum; run `qa index --rebuild`")
    if time.time() - stat.st_mtime > VERIFIED_SETTLE_SECONDS:
        _verified.put([identity], [True])


#: How long after its last write a verified file is remembered as sound (see _verify_file).
VERIFIED_SETTLE_SECONDS = 2.0
_verified = RecentlyUsed(capacity=4096)  # identities of files this process found sound


def _sample_sha256(path: Path) -> str:
    """SHA-256 of the size and _SAMPLE_BLOCKS blocks at evenly spaced offsets (first and last included)."""
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    last = max(0, size - _SAMPLE_BLOCK)
    with open(path, "rb") as handle:
        for offset in sorted({last * i // (_SAMPLE_BLOCKS - 1) for i in range(_SAMPLE_BLOCKS)}):
            handle.seek(offset)
            digest.update(handle.read(_SAMPLE_BLOCK))
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"
