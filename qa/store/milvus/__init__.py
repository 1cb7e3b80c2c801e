"""The Milvus backend of the store protocols (:mod:`qa.store.protocols`).

An index on a Milvus engine (Milvus Lite file, standalone server or cluster: only the URI
differs, :mod:`qa.store.milvus.location`) is a set of generations, each four collections
named ``<base>_g<NNNNNN>_<part>`` (:mod:`qa.store.milvus.schema`), plus one alias ``<base>``
that names the current generation's chunk collection. A reader needs only the URI
(:mod:`qa.store.milvus.reader`); a build writes a new generation's collections and then
switches the alias in one step (:mod:`qa.store.milvus.publish`).

pymilvus is imported only by these modules, and only once a Milvus URI is used.
"""
