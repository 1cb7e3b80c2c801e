"""Milvus URIs: what ``--index-dir`` may name besides a folder, and the client for one.

- ``milvus://HOST:PORT/BASE`` (``milvus+https://`` for TLS): a standalone server or a
  cluster's proxy; ``BASE`` names the index (its collections start with it).
- ``milvus-lite:///path/qa.db`` (``?name=BASE``, default ``qa``): a Milvus Lite file, for
  development.

The token (``user:password`` or an API key) comes from the environment variable
``QA_MILVUS_TOKEN``, never from the command line, where process lists would show it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ...errors import QAError

TOKEN_ENV = "QA_MILVUS_TOKEN"
_BASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,120}")


@dataclass(frozen=True)
class MilvusLocation:
    """A parsed Milvus URI: the client's URI, the index's base name, whether it is a Lite file."""

    uri: str  # as written by the user, for messages
    client_uri: str  # what MilvusClient connects to
    base: str
    lite: bool

    @classmethod
    def parse(cls, uri: str) -> MilvusLocation:
        parts = urlsplit(uri)
        if parts.scheme == "milvus-lite":
            if not parts.path or parts.netloc:
                raise QAError(f"{uri}: a Milvus Lite URI is milvus-lite:///path/to/file.db")
            base = parse_qs(parts.query).get("name", ["qa"])[0]
            client_uri, lite = os.path.abspath(parts.path), True
        else:
            if not parts.hostname or not parts.port:
                raise QAError(f"{uri}: a Milvus URI is milvus://HOST:PORT/NAME")
            base = parts.path.strip("/")
            scheme = "https" if parts.scheme == "milvus+https" else "http"
            client_uri, lite = f"{scheme}://{parts.hostname}:{parts.port}", False
        if not _BASE_NAME.fullmatch(base):
            raise QAError(f"{uri}: the index name {base!r} must be letters, digits and underscores, "
                          "starting with a letter")
        return cls(uri, client_uri, base, lite)

    def client(self):
        """A connected ``pymilvus.MilvusClient`` (safe to share between threads)."""
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise QAError(f"{self.uri} needs pymilvus: pip install 'qa[milvus]'") from None
        try:
            return MilvusClient(self.client_uri, token=os.environ.get(TOKEN_ENV, ""))
        except Exception as exc:  # pymilvus raises its own types for every connection failure
            raise QAError(f"cannot connect to Milvus at {self.uri}: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
