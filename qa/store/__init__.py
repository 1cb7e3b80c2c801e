"""Keeping an index: the protocols a storage backend implements (:mod:`.protocols`) and the
local backend, a folder of immutable generations (:mod:`.folder`, :mod:`.manifest`,
:mod:`.local`) holding the chunk table (:mod:`.chunk_table`), the ranking rows
(:mod:`.ranking_rows`, on :mod:`.row_files`), the vocabulary and its stored translations
(:mod:`.vocabulary`, :mod:`.neighbour_table`, on :mod:`.sqlite`) and the vector index
(:mod:`.vectors`: a class per kind behind one interface). File formats live here and nowhere
else. May import ``qa.text`` and the foundation modules; not ``ingest`` or ``encode``.
"""
