"""Readers during updates: a process loads the index and retrieves in a loop while another
process rebuilds it and updates it incrementally; every failure is counted.

    python bench/reader_loop.py                    # 24 updates, at least 5,000 loads+retrieves
    python bench/reader_loop.py --updates 8 --loads 500 --json

The writer alternates a full rebuild with adding, changing and removing one document, so
both kinds of build swap generations under the reader. The test suite runs a shorter loop
(tests/test_reliability.py); this is the long run the README reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
QUESTION = "¿Quién suministró drones a Rusia?"

# One writer process running every update, so the loop is not dominated by process start-up.
_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import qa

    docs, index_dir, updates = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    extra = docs / "extra.txt"
    for step in range(updates):
        kind = ("rebuild", "add", "change", "remove")[step % 4]
        if kind == "add":
            extra.write_text("Los drones llegaron desde Irán en otoño, según el informe.\\n", encoding="utf-8")
        elif kind == "change":
            extra.write_text(f"El informe {step} cambió: los drones llegaron en invierno.\\n", encoding="utf-8")
        elif kind == "remove":
            extra.unlink()
        qa.build_index(docs, index_dir, rebuild=kind == "rebuild", progress=False)
        print(kind, flush=True)
""")


@dataclass
class LoopResult:
    """What the reader saw while the writer ran ``updates`` builds."""

    updates: int
    loads: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the report
    generations_seen: int = 0
    seconds: float = 0.0


def reader_loop(docs: Path, index_dir: Path, updates: int, min_loads: int) -> LoopResult:
    """Run the writer over ``docs`` and load+retrieve from ``index_dir`` until it has done
    ``updates`` builds and the reader ``min_loads`` loads; the index must exist already."""
    import qa

    result = LoopResult(updates)
    generations: set[str] = set()
    started = time.monotonic()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(docs), str(index_dir), str(updates)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while writer.poll() is None or result.loads < min_loads:
            try:
                index = qa.load(index_dir)
                hits = index.retrieve(QUESTION, k=3)
                if not hits:
                    raise AssertionError("no hits")
                generations.add(index.snapshot().name)
            except Exception as exc:  # every failure counts, whatever its kind
                result.failures += 1
                if len(result.errors) < 5:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
            result.loads += 1
    finally:
        out, err = writer.communicate()
    if writer.returncode != 0:
        raise RuntimeError(f"the writer failed:\n{err[-3000:]}")
    done = out.split()
    if len(done) != updates:
        raise RuntimeError(f"the writer did {len(done)} updates, not {updates}")
    result.generations_seen = len(generations)
    result.seconds = time.monotonic() - started
    return result


def prepare(work: Path) -> tuple[Path, Path]:
    """A documents folder of the seed article plus a few variants, and its built index."""
    import qa

    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    seed = next((REPO / "seeds").glob("*.txt"))
    text = seed.read_text(encoding="utf-8")
    shutil.copy(seed, docs)
    for i in range(3):
        (docs / f"variant-{i}.txt").write_text(f"{text}\n\nVariante {i}.\n", encoding="utf-8")
    index_dir = work / "index"
    qa.build_index(docs, index_dir, progress=False)
    return docs, index_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=24)
    parser.add_argument("--loads", type=int, default=5000)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        docs, index_dir = prepare(work)
        result = reader_loop(docs, index_dir, args.updates, args.loads)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(f"{result.loads} loads+retrieves during {result.updates} updates ({result.generations_seen} generations "
              f"seen, {result.seconds:.0f} s): {result.failures} failures")
        for error in result.errors:
            print("  " + error)


if __name__ == "__main__":
    main()
