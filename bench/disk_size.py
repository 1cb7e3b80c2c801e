"""Bytes per chunk on disk, per file, of a real index and of the synthetic one built from it.

    python bench/disk_size.py WORK [--synthetic 100000] [--synthetic 1000000]

The real index is the Spanish XQuAD-R pool (bench/data/es.json, the ``qa eval`` pool);
the synthetic ones repeat its rows (bench/synthetic.py) with derived chunk vectors. Every
file of the current generation is counted once, by its path (a segment's files under
``seg-*/``), divided by the generation's chunks; hard links are not in play in a fresh build.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qa  # noqa: E402
from qa.eval.benchmark import load_benchmark  # noqa: E402
from qa.store.folder import IndexDirectory  # noqa: E402


def per_chunk(index_dir: Path) -> dict:
    """{"chunks", "total", "files": {file name: bytes per chunk}} of the current generation."""
    directory = IndexDirectory(index_dir)
    generation = directory.generation_path(directory.current_generation())
    chunks = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))["chunks"]
    sizes: dict[str, int] = defaultdict(int)
    for path in generation.rglob("*"):
        if path.is_file():
            sizes[path.name] += path.stat().st_size
    files = {name: size / chunks for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])}
    return {"chunks": chunks, "total": sum(sizes.values()) / chunks, "files": files}


def build_real(work: Path) -> Path:
    docs, index = work / "pool-es", work / "index-es"
    load_benchmark("es", "es").write_articles(docs)
    qa.build_index(docs, index, rebuild=True, progress=False)
    return index


def build_synthetic(real_index: Path, work: Path, n: int) -> Path:
    import synthetic

    snapshot = qa.load(real_index).snapshot()
    real = snapshot.generation.vectors.vectors(np.arange(snapshot.generation.vectors.size, dtype=np.int64))
    out = work / f"index-synthetic-{n}"
    shutil.rmtree(out, ignore_errors=True)
    source = IndexDirectory(real_index).generation_path(snapshot.name)
    synthetic.write_index(out, synthetic.derived_vectors(real, n), source)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--synthetic", type=int, action="append", default=[], help="chunks of a synthetic index")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic indexes")
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)
    real = build_real(options.work)
    results = {"real-es": per_chunk(real)}
    for n in options.synthetic:
        index = build_synthetic(real, options.work, n)
        results[f"synthetic-{n}"] = per_chunk(index)
        if not options.keep:
            shutil.rmtree(index)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
