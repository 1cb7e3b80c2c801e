"""The generation a query runs on, followed across rebuilds.

A :class:`Snapshot` is one opened generation (:class:`qa.store.protocols.Generation`) with
the encoder it was built with and a cache of its question words' neighbours; it never
changes. :class:`LiveSnapshot` hands out the current one: when a rebuild makes another
generation current, the next query opens it, while a query already running finishes on the
snapshot it started with, so every result comes wholly from one version of the index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..encode.base import Embedder
from ..encode.models import choose_embedder
from ..store.protocols import Generation, Generations
from ..recently_used import RecentlyUsed


@dataclass(frozen=True)
class Snapshot:
    """One generation of the index, opened; never changes once built."""

    generation: Generation
    embedder: Embedder
    neighbours: RecentlyUsed = field(default_factory=RecentlyUsed)  # question word -> its Neighbours here

    @property
    def name(self) -> str:
        return self.generation.name

    @property
    def manifest(self):
        return self.generation.manifest


class LiveSnapshot:
    """The current generation of ``generations``, reopened when a rebuild replaces it; safe to
    share between threads. ``model`` is the encoder asked for (None: the index's own)."""

    def __init__(self, generations: Generations, model: str | Embedder | None = None) -> None:
        self.generations = generations
        self._requested = model
        self._reload_lock = threading.Lock()
        self._snapshot = self._open(None)

    def current(self) -> Snapshot:
        """The live generation, reloaded first if a rebuild has replaced it."""
        snapshot = self._snapshot
        if self.generations.current_generation() != snapshot.name:
            with self._reload_lock:
                if self.generations.current_generation() != self._snapshot.name:
                    self._snapshot = self._open(self._snapshot)
                snapshot = self._snapshot
        return snapshot

    def _open(self, reuse: Snapshot | None) -> Snapshot:
        generation = self.generations.open()
        try:
            embedder = choose_embedder(
                self._requested, generation.manifest.embedder, self.generations.location,
                reuse.embedder if reuse else None,
                switch_hint="rebuild it with `qa index --rebuild --model {model} --index-dir "
                            + self.generations.location.replace("{", "{{").replace("}", "}}") + "`")
            return Snapshot(generation, embedder)
        except BaseException:
            generation.lease.release()
            raise
