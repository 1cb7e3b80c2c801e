"""Turning a documents folder into a new generation: what changed and what to embed
(:mod:`.builder`), the one place the generation's files are written in order
(:mod:`.artifacts`), the stored translations (:mod:`.neighbours`) and the steps' progress and
timings (:mod:`.steps`). May import ``ingest``, ``encode``, ``store``, ``text`` and the
foundation modules; not ``search`` (a build never ranks).
"""
