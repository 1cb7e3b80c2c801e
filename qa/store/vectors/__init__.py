"""The vector index of a generation: one interface (:class:`qa.store.protocols.VectorIndex`),
one base class (:mod:`.base`), one class per kind (:mod:`.flat`, :mod:`.ivf_sq8`), chosen by size (:mod:`.choice`) and made
or reopened by :mod:`.factory`. The only FAISS code besides the vocabulary's word graph. May
import the rest of ``qa.store`` below it (row files), ``qa.text`` and the foundation modules.
"""
