"""Writing answers from evidence: the extractive answerer (:mod:`.answerer`), the LLM answerer
(:mod:`.llm`) and the sentences the answerer writes itself (:mod:`.messages`). It receives the
evidence (:class:`~qa.types.Findings`); it never searches. May import ``search`` (the
verification's thresholds), ``text`` and the foundation modules.
"""
