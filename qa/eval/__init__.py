"""``qa eval``: the XQuAD-R benchmark's retrieval and answer figures (:mod:`.benchmark`) and the
near-domain, conversation and follow-up runs with the verifier's calibration
(:mod:`.answers`). Uses the library through ``qa.api`` and its supported hooks
(:meth:`qa.api.Index.trace`, :meth:`qa.api.Index.passages`). May import everything below
``cli`` and ``app``.
"""
