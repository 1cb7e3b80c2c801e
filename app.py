"""The chat app: ask questions about a folder of documents and check every citation in place.

    python app.py                      # index seeds/ into index/ on first run, serve on 127.0.0.1:7860
    python app.py --docs-dir ~/papers --index-dir ~/papers-index --port 8000
    QA_AUTH=alice:s3cret python app.py --host 0.0.0.0
    python app.py --llm-url http://localhost:11434/v1 --llm-model llama3.2

Only the entry point: the app lives in :mod:`qa.app` (rendering, handlers, layout, security,
settings), and what it does with documents and indexes is the library's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qa.app.settings import main

#: This script's folder: a ``.env`` beside it is never served.
APP_DIR = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.exit(main(app_dir=APP_DIR))
