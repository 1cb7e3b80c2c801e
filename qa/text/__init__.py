"""Pure text handling: words and n-grams for BM25 (:mod:`.lexical`), sentences and clauses
(:mod:`.sentences`), the language of a short text (:mod:`.language`), and a passage's places
in words (:mod:`.places`). No files, no vectors. May import only the foundation modules
(``qa.errors``, ``qa.types``, ``qa.machine``, ``qa.checksums``).
"""
