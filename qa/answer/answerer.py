"""Answers with verifiable citations: extractive by default, an LLM when one is configured.

The extractive answerer quotes the evidence sentences verbatim, each with its marker, and
says which documents they come from. When the search's verdict is that the best evidence
does not answer (:mod:`qa.search.verification`) it abstains and lists the closest matches instead. The LLM answerer gets
the top passages as numbered data; markers naming no passage are removed and the rest are
renumbered in order of first mention, so ``[n]`` always means ``citations[n-1]``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterator, Sequence

from . import messages
from ..text.language import detect_language
from .llm import LLMSettings, LLMUnavailable, Source, build_messages, clean_markers, stream_completion, strip_foreign_links
from ..text.places import describe
from ..types import Answer, Citation, Evidence, Findings, Hit, clip_spans
from ..search.verification import SUPPORT_THRESHOLD


MAX_QUOTES = 3
# A further quote must be nearly as strong as the best one, or it dilutes the answer.
QUOTE_MARGIN = 0.08
CLOSEST_MATCHES = 3


def answer_stream(findings: Findings, question: str, history: Sequence[dict] = (), *,
                  llm: LLMSettings | None = None) -> Iterator[Answer]:
    """Yield the answer to ``question`` from the evidence the search found for it; the last
    one yielded has ``complete=True``."""
    hits = findings.hits
    question = question.strip()
    language = detect_language(question)
    unique = _distinct(findings.evidence)
    if not unique or not findings.verdict.supported:
        yield _abstention(question, language, unique, "extractive")
        return
    if llm is None:
        yield _extractive(question, language, unique, history)
        return
    try:
        yield from _llm_answer(question, language, hits, unique, history, llm)
    except LLMUnavailable as exc:
        fallback = _extractive(question, language, unique, history)
        yield replace(fallback, notice=messages.llm_unreachable(language, str(exc)))


def _distinct(evidence: Sequence[Evidence]) -> list[Evidence]:
    """Best first, each sentence once: overlapping chunks hold the same sentence twice."""
    seen: set[tuple[str, int, int]] = set()
    texts: set[str] = set()
    result = []
    for item in evidence:
        key = (item.hit.doc_id, item.start, item.end)
        normalised = " ".join(item.text.lower().split())
        if key in seen or normalised in texts:
            continue
        seen.add(key)
        texts.add(normalised)
        result.append(item)
    return result


def _citation(n: int, item: Evidence) -> Citation:
    hit = item.hit
    # the quote's own place, not the chunk's first page: a chunk may run over several pages
    places = clip_spans(hit.spans, item.start, item.end)
    return Citation(n=n, source=hit.source, page=places[0].page if places else hit.page, start=item.start,
                    end=item.end, quote=item.text, score=round(item.score, 4), passage=hit.text,
                    passage_start=hit.start, chunk_id=hit.chunk_id, location=describe(places))


def _select(evidence: list[Evidence], history: Sequence[dict]) -> list[Evidence]:
    """The quotes to give: the sentence the verdict was on, plus up to MAX_QUOTES-1 nearly
    as strong.

    In a follow-up, the sentence the previous answer answered with (its first quote) steps
    aside when another is nearly as strong ("And who else...?" should not get the same
    sentence again); a sentence it only showed as a further quote may answer the follow-up,
    but is not repeated as a further quote.
    """
    quoted_before = _last_answer(history)
    answered_with = quoted_before.split("[1]")[0]
    fresh = [e for e in evidence if " ".join(e.text.split()) not in quoted_before]
    first = evidence[0]
    if " ".join(first.text.split()) in answered_with:
        others = [e for e in evidence if " ".join(e.text.split()) not in answered_with]
        if others and others[0].score >= first.score - QUOTE_MARGIN:
            first = others[0]
    floor = max(SUPPORT_THRESHOLD, first.score - QUOTE_MARGIN)
    return [first] + [e for e in fresh if e is not first and e.score >= floor][:MAX_QUOTES - 1]


def _last_answer(history: Sequence[dict]) -> str:
    for message in reversed(list(history or ())):
        if message.get("role") == "assistant":
            return " ".join(str(message.get("content", "")).split())
    return ""


def _extractive(question: str, language: str, evidence: list[Evidence], history: Sequence[dict]) -> Answer:
    chosen = _select(evidence, history)
    citations = tuple(_citation(n, e) for n, e in enumerate(chosen, start=1))
    quotes = "\n".join(f"{_quoted(c.quote)} [{c.n}]" for c in citations)
    sources = list(dict.fromkeys(c.source for c in citations))
    text = f"{quotes}\n\n{messages.sources_line(language, sources)}"
    return Answer(question=question, text=text, citations=citations, abstained=False, language=language,
                  answerer="extractive")


def _quoted(sentence: str) -> str:
    """The sentence in quotation marks, unless it already opens with one."""
    return sentence if sentence[:1] in "\"“«„'‘「『" else f"“{sentence}”"


def _abstention(question: str, language: str, evidence: list[Evidence], answerer: str) -> Answer:
    closest = tuple(_citation(n, e) for n, e in enumerate(evidence[:CLOSEST_MATCHES], start=1))
    text = messages.not_found(language)
    if closest:
        text += "\n\n" + messages.closest_matches(language) + "\n" + "\n".join(
            f"{_quoted(c.quote)} [{c.n}]" for c in closest)
    return Answer(question=question, text=text, citations=closest, abstained=True, language=language,
                  answerer=answerer)


def _llm_answer(question: str, language: str, hits: list[Hit], evidence: list[Evidence],
                history: Sequence[dict], llm: LLMSettings) -> Iterator[Answer]:
    """Stream the model's answer, then clean its markers and links against the passages."""
    sources = [Source(n, hit.source, hit.page, hit.text) for n, hit in enumerate(hits, start=1)]
    valid = set(range(1, len(sources) + 1))
    text = ""
    for piece in stream_completion(llm, build_messages(question, sources, history)):
        text += piece
        partial, _, _ = clean_markers(text, valid)
        yield Answer(question=question, text=partial, citations=(), abstained=False, language=language,
                     answerer="llm", complete=False)
    cleaned, cited, removed = clean_markers(text, valid)
    # renumber in order of first mention so that [n] is citations[n-1]
    renumber = {old: new for new, old in enumerate(cited, start=1)}
    cleaned = re.sub(r"\[(\d+)\]", lambda m: f"[{renumber[int(m.group(1))]}]", cleaned)
    citations = tuple(_citation(renumber[old], _best_in(hits[old - 1], evidence)) for old in cited)
    cleaned, links = strip_foreign_links(cleaned, " ".join(hits[old - 1].text for old in cited))
    if not citations:  # the model found no support it could cite
        yield replace(_abstention(question, language, evidence, "llm"), removed_citations=removed, removed_links=links)
        return
    yield Answer(question=question, text=cleaned.strip(), citations=citations, abstained=False, language=language,
                 answerer="llm", removed_citations=removed, removed_links=links)


def _best_in(hit: Hit, evidence: list[Evidence]) -> Evidence:
    """The strongest evidence sentence inside ``hit``, or the whole passage if none was scored."""
    for item in evidence:
        if item.hit.chunk_id == hit.chunk_id:
            return item
    return Evidence(hit=hit, start=hit.start, end=hit.end, text=hit.text, score=hit.score)
