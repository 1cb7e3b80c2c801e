"""Serving safely: loopback host names only unless exposed on purpose (DNS rebinding), no
remote files fetched for a visitor, the index, the documents and ``.env`` files never
served, and logins."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse

from ..store.locations import is_engine
from .handlers import Library

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def parse_auth(values: Iterable[str] | None) -> list[tuple[str, str]] | None:
    pairs = []
    for value in values or ():
        user, sep, password = value.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth and QA_AUTH take user:password")
        pairs.append((user, password))
    return pairs or None


def blocked_paths(library: Library, app_dir: Path) -> list[str]:
    """The index, the documents and any .env next to them or the app: never served."""
    docs = library.docs_dir.resolve()
    paths, folders = {docs}, [Path.cwd(), app_dir, docs.parent]
    if not is_engine(library.index_dir):  # an index on a vector engine has no folder here
        index = Path(library.index_dir).resolve()
        paths.add(index)
        folders.append(index.parent)
    for folder in folders:
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
