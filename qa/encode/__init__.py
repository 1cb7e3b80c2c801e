"""Turning text into vectors: the :class:`~.base.Embedder` interface and the capabilities an
embedder declares (:mod:`.base`), the bundled multilingual encoder (:mod:`.usem3`, its forward
pass in :mod:`.usem3_forward`, its word table in :mod:`.whole_words`), sentence-transformers
models (:mod:`.sentence_transformers`, one-pass sentence vectors in :mod:`.token_pooling`),
and choosing one by name (:mod:`.models`). A new encoder is a class here with the two encode
methods. May import ``qa.text`` and the foundation modules; not ``ingest`` or ``store``.
"""
