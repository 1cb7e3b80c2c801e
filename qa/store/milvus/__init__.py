"""The Milvus backend of the store protocols (:mod:`qa.store.protocols`).

An index on a Milvus engine (Milvus Lite file, standalone server or cluster: only the URI
differs, :mod:`qa.store.milvus.location`) mirrors a local one (:mod:`qa.store.segments`):
immutable segments, each two collections ``<base>_sNNNNNN_chunks`` and ``_pieces``, a
vocabulary and a stored-translations collection that only grow, and per generation a small
record ``<base>_gNNNNNN_meta`` listing its segments and deleted rows
(:mod:`qa.store.milvus.schema`); the alias ``<base>`` names the current record. A reader
needs only the URI (:mod:`qa.store.milvus.reader`); a build uploads only the parts the engine
lacks, then switches the alias in one step (:mod:`qa.store.milvus.publish`).

pymilvus is imported only by these modules, and only once a Milvus URI is used.
"""
