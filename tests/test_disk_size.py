"""The index's bytes per chunk on disk (issue 15's target: at most 5 KB per chunk at 100k
and 1M chunks; bench/disk_size.py measures it there, per file)."""

from __future__ import annotations

from pathlib import Path

import qa
from qa.eval.benchmark import load_benchmark
from qa.store.folder import IndexDirectory

# Per chunk, the files of the segments: what grows with the chunks. The generation's own
# tables (vocabulary, stored translations, the 4 MB n-gram document frequencies) are fixed
# costs a 100-chunk index cannot spread; at 100k chunks they add about 0.25 KB a chunk.
# Format 5 took 9,045 bytes a chunk here (103 chunks), format 6 7,184.
SEGMENT_BYTES_PER_CHUNK = 7_400


def test_an_index_of_real_text_stays_within_its_bytes_per_chunk(tmp_path):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    load_benchmark("es", "es", articles=range(24)).write_articles(docs)
    # the approximate vector index with its re-score copy: what an index past 50k chunks holds
    qa.build_index(docs, index_dir, progress=False, vector_index="ivf-sq8")
    directory = IndexDirectory(index_dir)
    generation, manifest = directory.open_manifest()
    folder = directory.generation_path(generation)
    segment_bytes = sum(path.stat().st_size for path in folder.glob("seg-*/*"))
    assert manifest.chunks > 80
    assert segment_bytes / manifest.chunks <= SEGMENT_BYTES_PER_CHUNK, sorted(
        ((p.stat().st_size // manifest.chunks, p.name) for p in folder.glob("seg-*/*")), reverse=True)
