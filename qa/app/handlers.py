"""What the app's events do, as plain functions of the :class:`Library` (testable without a
browser): answering a question as a stream, updating or rebuilding the index, indexing
uploads. Answering, indexing and uploads are the library's (``Index.ask_stream``,
``build_index``, :func:`qa.ingest.uploads.add_uploads`); errors become one readable line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import gradio as gr
import pandas as pd

from ..answer.llm import LLMSettings
from ..api import Index, open_or_build
from ..build.builder import build_index
from ..errors import QAError, first_line
from ..ingest.limits import DEFAULT_MAX_FILE_BYTES
from ..ingest.uploads import add_uploads
from ..store.locations import is_engine
from ..types import BuildReport
from .render import code, human_bytes, render_chat, report_lines, when

log = logging.getLogger("qa.app")

DOC_HEADERS = ["Document", "Pages", "Chunks", "Size", "Indexed (UTC)"]
# the documents table lists this many, by name: at 142,858 documents, listing them all took
# 3.5 s of every upload, and a browser table of that many rows helps nobody
LISTED_DOCUMENTS = 1000


@dataclass
class Library:
    """The documents folder, its index and how to answer: what the handlers work on."""

    docs_dir: Path
    index_dir: Path | str  # a folder, or a vector engine's URI (qa.store.locations)
    index: Index
    model: str | None = None
    llm: LLMSettings | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ocr_languages: str | None = None

    @classmethod
    def open(cls, docs_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], *, model: str | None = None,
             llm: LLMSettings | None = None, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
             ocr_languages: str | None = None) -> Library:
        """Load the index, building it from ``docs_dir`` first if there is none or if an
        older qa wrote it (the library's policy: :func:`qa.api.open_or_build`)."""
        docs, where = Path(docs_dir), str(index_dir) if is_engine(index_dir) else Path(index_dir)
        index, _ = open_or_build(docs, where, model=model, max_file_bytes=max_file_bytes, progress=True,
                                 ocr_languages=ocr_languages)
        return cls(docs, where, index, model, llm, max_file_bytes, ocr_languages)

    def build(self, rebuild: bool = False, only: Sequence[Path] | None = None) -> BuildReport:
        """Update the index from the documents folder (``only``: from these of its files alone),
        or rebuild it."""
        return build_index(self.docs_dir, self.index_dir, model=self.model, rebuild=rebuild,
                           max_file_bytes=self.max_file_bytes, progress=True, ocr_languages=self.ocr_languages, only=only)

    def prepare_for_uploads(self) -> threading.Thread:
        """Load in the background what the first upload would otherwise wait for: the build
        side's modules with the text splitter (over a second to import) and the encoder's
        word table with what an update reads of it, so that the first upload costs what the
        later ones do."""

        def warm_up() -> None:
            try:
                from ..encode.base import word_table
                from ..ingest.chunking import split
                from ..ingest.documents import parse

                split(parse(b"Warm-up.", "warm-up.txt"))
                table = word_table(self.index.embedder)
                if table is not None:
                    table.prepare_for_updates()
            except Exception:  # only a head start: the upload itself reports any problem
                log.exception("preparing for uploads failed")

        # not a daemon: stopped inside a C extension at exit, a daemon thread aborts the process
        thread = threading.Thread(target=warm_up, name="qa-prepare-uploads")
        thread.start()
        return thread

    def missing_documents(self) -> list[str]:
        """Indexed documents that are not in the documents folder: indexing would drop them."""
        # a mail's attachment is there while the mail is (its entry names the file it came from)
        documents = self.index.snapshot().manifest.documents.all()
        return [source for source, entry in documents.items()
                if not (self.docs_dir / (entry.container or source)).is_file()]


def plain_history(turns: Sequence[dict]) -> list[dict]:
    """The conversation as the library takes it: finished, successful turns as plain text."""
    history: list[dict] = []
    for turn in turns:
        if turn.get("done") and turn.get("answer") is not None and not turn.get("error"):
            history += [{"role": "user", "content": turn["question"]},
                        {"role": "assistant", "content": turn["answer"].text}]
    return history


def documents_frame(library: Library) -> pd.DataFrame:
    rows = [[d.source, d.places, d.chunks, human_bytes(d.bytes), when(d.indexed_at)]
            for d in library.index.documents(LISTED_DOCUMENTS)]
    return pd.DataFrame(rows, columns=DOC_HEADERS)


def stats_markdown(library: Library) -> str:
    s = library.index.stats()
    text = (
        f"**Documents:** {s.documents} · **Chunks:** {s.chunks} · **Encoder:** {code(s.embedder)} "
        f"({s.dimension}-d, {code(s.vector_index)}) · **Size on disk:** {human_bytes(s.size_bytes)} · "
        f"**Built:** {code(when(s.built_at))}  \n**Documents folder:** {code(library.docs_dir.resolve())} · "
        + (f"**Index:** {code(library.index_dir)}" if is_engine(library.index_dir)
           else f"**Index folder:** {code(library.index_dir.resolve())}")
    )
    if s.documents > LISTED_DOCUMENTS:
        text += (f"\n\nThe table lists the first {LISTED_DOCUMENTS:,} documents by name; "
                 f"{code('qa info --index-dir ' + str(library.index_dir))} lists all {s.documents:,}.")
    missing = library.missing_documents()
    if missing:
        text += (f"\n\n**Note:** {len(missing)} indexed document(s) are not in the documents folder "
                 f"(for example {code(missing[0])}); updating the index from this folder removes them.")
    return text


def respond(library: Library, question: str | None, turns: list[dict]):
    """Stream the answer to ``question``: yields (chatbot messages, turns, question box)."""
    question = (question or "").strip()
    if not question:
        yield gr.skip(), gr.skip(), gr.skip()
        return
    history = plain_history(turns)
    turn: dict = {"question": question, "answer": None, "error": None, "done": False}
    turns = [*turns, turn]
    yield render_chat(turns), turns, gr.Textbox(value="", interactive=False)
    try:
        for answer in library.index.ask_stream(question, history, llm=library.llm):
            turn["answer"] = answer
            if not answer.complete:
                yield render_chat(turns), turns, gr.skip()
    except QAError as exc:
        turn["error"] = first_line(exc)
    except Exception as exc:  # never a traceback in the page; the server log has it
        log.exception("answering %r failed", question)
        turn["error"] = f"internal error ({type(exc).__name__}); the server log has the details"
    turn["done"] = True
    yield render_chat(turns), turns, gr.Textbox(interactive=True)


def update_index(library: Library, lines: list[str], rebuild: bool, progress=None,
                 only: Sequence[Path] | None = None) -> tuple[pd.DataFrame, str, str]:
    """Bring the index up to date with the folder, or with its files ``only`` (or rebuild it):
    (table, statistics, log)."""
    if progress is not None:
        progress(0, desc="Rebuilding the index…" if rebuild else "Updating the index…")
    started = time.monotonic()
    try:
        report = library.build(rebuild=rebuild, only=only)
        lines = [*lines, *report_lines(report, time.monotonic() - started)]
    except QAError as exc:
        lines = [*lines, f"indexing failed: {first_line(exc)}"]
    except Exception as exc:
        log.exception("indexing failed")
        lines = [*lines, f"indexing failed: internal error ({type(exc).__name__}); the server log has the details"]
    return documents_frame(library), stats_markdown(library), "\n".join(lines)


def index_uploads(library: Library, files: Sequence[str] | None, progress=None):
    """Save uploaded files into the documents folder and index them: (table, statistics, log, upload box)."""
    if not files:
        return gr.skip(), gr.skip(), gr.skip(), None
    if progress is not None:
        progress(0, desc="Saving the files…")
    # Gradio keeps each upload as <temp>/<hash>/<name as sent, with / \ < > and the like removed>
    try:
        results = add_uploads(library.docs_dir, [(Path(f).name, f) for f in files],
                              max_file_bytes=library.max_file_bytes)
    except OSError as exc:  # a full disk or a read-only folder: say so, in one line
        return gr.skip(), gr.skip(), f"could not save the uploads in {library.docs_dir}: {first_line(exc)}", None
    lines = [r.message for r in results]
    if not any(r.saved for r in results):
        return gr.skip(), gr.skip(), "\n".join(lines), None
    # the saved files alone: a large folder is not listed again for them
    saved = [library.docs_dir / r.saved for r in results if r.saved]
    return (*update_index(library, lines, False, progress, only=saved), None)
