"""Reading documents: finding files in a folder and saving uploads (:mod:`.documents`,
:mod:`.uploads`), each format's reader (:mod:`.plain_text`, :mod:`.office`, :mod:`.ebook`,
:mod:`.mail`, OCR in :mod:`.ocr`) with the places of each part (:mod:`.provenance`), the files
inside files (a mail's attachments, :mod:`.attachments`), chunking (:mod:`.chunking`) and the sentence pieces of chunks (:mod:`.sentence_spans`). A new file
format is a reader here, named in :func:`.documents.parse`. May import ``qa.text`` and the
foundation modules; not ``encode`` or ``store``.
"""
