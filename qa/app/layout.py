"""The page: its tabs, components and the events wired to the handlers, with the concurrency
each kind of event gets."""

from __future__ import annotations

import gradio as gr

from ..ingest.documents import SUPPORTED_SUFFIXES
from .handlers import DOC_HEADERS, Library, documents_frame, index_uploads, respond, stats_markdown, update_index
from .render import code, human_bytes

EXAMPLE_QUESTIONS = [
    "Who supplied drones to Russia?",
    "¿Quién vende armas a Rusia?",
    "Wer hat Russland Drohnen geliefert?",
]
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
