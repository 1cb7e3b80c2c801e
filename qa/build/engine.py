"""Building an index that lives on a vector engine (a Milvus URI, :mod:`qa.store.milvus`).

The build runs locally, then publishes. The local builder (:mod:`qa.build.builder`) brings
a staged copy of the index up to date in a folder of this machine (``QA_ENGINE_STAGING``,
default ``~/.cache/qa/engine-staging/<hash of the URI>``), embedding only new or changed
content as it always does (content hashes) and writing an update's documents as one new
segment (:mod:`qa.store.segments`). The new rows also go straight to the engine, a batch at a
time as they are encoded here or on Ray workers, into a new segment's collections
(:class:`~qa.store.milvus.publish.SegmentStream`). The publish then uploads only the
segments (unless streamed), words and stored translations the engine lacks and switches to
the new generation's record in one step (:func:`qa.store.milvus.publish.publish`). So an
update costs what it changed on the engine as well as here.

The staged copy is used only if it is the one the engine's current generation was
published from (the engine records the staged manifest's SHA-256); otherwise (another
machine built last, or the staging folder was lost, or a publish failed after the local
build) it is set aside and everything is embedded again. Beside it the staging folder keeps
the stored-translations table last published (``published-neighbours.sqlite``), so that only
its changed rows go next time. Writers on one machine queue on the staging folder's lock; do
not build one index from two machines at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

from ..store.folder import IndexDirectory
from ..store.links import link_or_copy
from ..store.local import LocalGenerations
from ..store.manifest import MANIFEST_FILE
from ..types import BuildReport

STAGING_ENV = "QA_ENGINE_STAGING"
PUBLISHED_NEIGHBOURS = "published-neighbours.sqlite"


def staging_folder(uri: str) -> Path:
    """This machine's staging folder for the index at ``uri``."""
    root = os.environ.get(STAGING_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qa", "engine-staging")
    return Path(root) / hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]


def _staged_sha256(index: Path) -> str | None:
    directory = IndexDirectory(index)
    name = directory.current_generation() if index.exists() else None
    if name is None:
        return None
    return hashlib.sha256((directory.generation_path(name) / MANIFEST_FILE).read_bytes()).hexdigest()


def build_on_engine(build_index: Callable[..., BuildReport], docs_dir, uri: str, *, progress: bool = True,
                    lock_timeout: float = 60.0, **options) -> BuildReport:
    """:func:`qa.build_index` for an index at an engine's ``uri`` (see the module docstring);
    ``build_index`` is the local build (passed in: the builder is the one that calls here)."""
    from ..store.milvus.location import MilvusLocation
    from ..store.milvus.publish import SegmentStream, publish, remove_stale
    from ..store.milvus.reader import MilvusGenerations
    from ..store.neighbour_table import NEIGHBOURS_FILE

    location = MilvusLocation.parse(uri)
    engine = MilvusGenerations(location)
    staging = staging_folder(uri)
    say = (lambda message: print(message, file=sys.stderr, flush=True)) if progress else (lambda message: None)
    with IndexDirectory(staging).write_lock(timeout=lock_timeout, on_wait=say):
        index = staging / "index"
        current = engine.current_generation()
        published_from = _published_from(engine, current)
        neighbours = staging / PUBLISHED_NEIGHBOURS
        if _staged_sha256(index) != published_from or published_from is None:
            if index.exists():
                say(f"The staged copy in {index} is not what {uri} holds: embedding everything again")
                shutil.rmtree(index)
            neighbours.unlink(missing_ok=True)
        # what earlier publishes left half-written goes before this build writes anything
        remove_stale(engine.client, location.base)
        # the new rows go to the engine as they are encoded (here or on Ray workers)
        stream = SegmentStream(engine.client, location.base)
        report = build_index(docs_dir, index, progress=progress, lock_timeout=lock_timeout, on_new_rows=stream.add,
                             **options)
        report.index_dir = uri
        staged = _staged_sha256(index)
        if staged is None or staged == published_from:
            return report  # nothing changed
        generation = LocalGenerations(index).open(full=False)
        try:
            publish(generation, location, engine.client, source_sha256=staged, progress=say, streamed=stream,
                    published_neighbours=neighbours if neighbours.exists() else None)
            # the table just published, for the next publish to send only its changed rows
            # (a generation's files never change: a link is a copy)
            neighbours.unlink(missing_ok=True)
            if (generation.folder / NEIGHBOURS_FILE).exists():
                link_or_copy(generation.folder / NEIGHBOURS_FILE, neighbours)
        finally:
            generation.lease.release()
    return report


def _published_from(engine, current: str | None) -> str | None:
    """The SHA-256 of the staged manifest the engine's current generation was published from."""
    if current is None:
        return None
    from ..store.milvus.reader import read_stats

    return read_stats(engine.client, engine.where.base, current).get("source_sha256")
