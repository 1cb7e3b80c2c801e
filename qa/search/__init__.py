"""Answering "which passages, which sentence, and does it answer": question checks
(:mod:`.checks`), the generation a query runs on (:mod:`.snapshot`), question words'
translations (:mod:`.translations`), dense search and hybrid re-ranking (:mod:`.searcher`,
:mod:`.ranking`), and evidence with its verdict (:mod:`.evidence`, :mod:`.verification`,
:mod:`.question_forms`). Reads a generation only through :mod:`qa.store.protocols`. May import
``encode``, ``store``, ``text`` and the foundation modules; not ``build`` or ``ingest``.
"""
