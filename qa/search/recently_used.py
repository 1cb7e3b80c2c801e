"""A small thread-safe map that forgets the least recently used: the query path's caches of
word vectors and neighbours."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Sequence


class RecentlyUsed:
    """A bounded word -> value map that evicts the least recently used; thread-safe.

    Holds query-word vectors (standalone encodings of single words, or the vocabulary's
    float16 copy) and query words' neighbours in one index generation: values a word would
    get again, so the caches change speed, not results.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, words: Iterable[str]) -> dict:
        """The cached values of those ``words`` that are cached (marked recently used)."""
        with self._lock:
            found = {}
            for word in words:
                value = self._items.get(word)
                if value is not None:
                    self._items.move_to_end(word)
                    found[word] = value
            return found

    def put(self, words: Sequence[str], values: Sequence) -> None:
        """Cache ``values`` under ``words``, evicting the least recently used beyond capacity."""
        with self._lock:
            for word, value in zip(words, values):
                self._items[word] = value
                self._items.move_to_end(word)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
