"""The chat's HTML: answers, their sources with the quote highlighted in its passage, and
the small formats the pages use.

Document text is data, never markup: every string that comes from a document, a file name,
the model or the user goes through :func:`esc` before it is wrapped in this module's own
tags, and the Chatbot runs with ``render_markdown=False`` (a markdown image in a document
would otherwise become an ``<img>`` fetching a remote URL) and its sanitizer on.
"""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

from ..types import Answer, BuildReport, Citation

MARKER = re.compile(r"\[(\d{1,3})\]")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


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
