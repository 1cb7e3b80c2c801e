"""A small thread-safe map that forgets the least recently used: the query path's caches of
word vectors and neighbours, and an engine's recently read chunk rows. Foundation: imports
nothing from qa."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable, Iterable, Sequence


class RecentlyUsed:
    """A bounded key -> value map that evicts the least recently used; thread-safe.

    Holds values a key would get again (query-word vectors and neighbours in one index
    generation, an engine generation's chunk rows), so the caches change speed, not results.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, words: Iterable[Hashable]) -> dict:
        """The cached values of those ``words`` (keys) that are cached (marked recently used)."""
        with self._lock:
            found = {}
            for word in words:
                value = self._items.get(word)
                if value is not None:
                    self._items.move_to_end(word)
                    found[word] = value
            return found

    def put(self, words: Sequence[Hashable], values: Sequence) -> None:
        """Cache ``values`` under ``words``, evicting the least recently used beyond capacity."""
        with self._lock:
            for word, value in zip(words, values):
                self._items[word] = value
                self._items.move_to_end(word)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
