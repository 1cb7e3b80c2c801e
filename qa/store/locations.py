"""Where an index lives: a folder (the default, :mod:`qa.store.local`) or a vector engine's
URI (:mod:`qa.store.milvus`), mapped to its :class:`~qa.store.protocols.Generations`.

Every face that takes an index directory (``--index-dir``, :func:`qa.load`, the app) goes
through :func:`open_generations`, so a URI works wherever a folder does. The engine's
modules, and pymilvus, are imported only when a URI names one.
"""

from __future__ import annotations

import os

from .protocols import Generations

ENGINE_SCHEMES = ("milvus://", "milvus+https://", "milvus-lite://")


def is_engine(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a vector engine's URI rather than a folder."""
    return isinstance(location, str) and location.startswith(ENGINE_SCHEMES)


def open_generations(location: str | os.PathLike[str]) -> Generations:
    """The generations at ``location``: a folder's, or a Milvus index's."""
    if is_engine(location):
        from .milvus.location import MilvusLocation
        from .milvus.reader import MilvusGenerations

        return MilvusGenerations(MilvusLocation.parse(str(location)))
    from .local import LocalGenerations

    return LocalGenerations(location)
