"""The index as a LangChain retriever, so it drops into existing chains."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LangChainDocument
from langchain_core.retrievers import BaseRetriever


class IndexRetriever(BaseRetriever):
    """Returns the top ``k`` passages of a :class:`qa.Index` as LangChain documents.

    Each document's metadata carries what a citation needs: ``source``, ``start``, ``end``,
    ``page``, ``chunk_id`` and ``score``.
    """

    index: Any
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LangChainDocument]:
        return [
            LangChainDocument(
                page_content=hit.text,
                id=hit.chunk_id,
                metadata={"source": hit.source, "start": hit.start, "end": hit.end, "page": hit.page,
                          "chunk_id": hit.chunk_id, "score": hit.score},
            )
            for hit in self.index.retrieve(query, k=self.k)
        ]
