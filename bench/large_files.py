"""Very large files, measured: a PDF of 2,000 pages and an XLSX of 200,000 rows.

Each file is read and chunked exactly as an ingest does (``rag.indexing.loaders`` then
``rag.indexing.chunking``, with the embedder's tokenizer) in a process of its own; the process's
resident memory is sampled every 20 ms, and the peak above what it held before the file was
opened is printed with the time taken. With ``--index`` the PDF is also indexed whole
(embedding and both indexes included) into a fresh knowledge base.

    python bench/large_files.py [--index]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the packages before bench/engine.py


class PeakMemory:
    """The highest resident memory of this process while the block runs, sampled."""

    def __enter__(self) -> Self:
        import psutil

        self._process = psutil.Process()
        self.before = self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def make_pdf(path: Path) -> Path:
    from corpus import write_pdfs

    write_pdfs(path.parent / "pdf", pages=2000, pages_per_file=2000)[0].rename(path)
    return path


def make_xlsx(path: Path, rows: int = 200_000) -> Path:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Orders")
    sheet.append(["Order", "Customer", "Region", "Product", "Quantity", "Amount"])
    regions = ["North", "South", "East", "West"]
    for i in range(rows):
        sheet.append([f"SO-{100000 + i}", f"Customer {i % 997}", regions[i % 4], f"Part {i % 131}", i % 17 + 1, round((i % 503) * 3.7, 2)])
    book.save(path)
    return path


def measure(path: Path, index: bool) -> dict:
    from rag import offline
    from rag.indexing import loaders

    offline.enforce()
    from rag.documents import LoadResult
    from rag.embedding import Embedder
    from rag.indexing.chunking import chunk_sections

    embedder = Embedder()
    embedder.token_offsets("warm up")
    result = LoadResult()
    started = time.perf_counter()
    with PeakMemory() as memory:
        chunks = sum(1 for _ in chunk_sections(loaders.load(path, result), embedder, 200, 40))
    out = {"pages": result.pages, "chunks": chunks, "seconds": time.perf_counter() - started,
           "peak_mb": (memory.peak - memory.before) / 2**20, "before_mb": memory.before / 2**20}
    if index:
        from rag.knowledge_base import KnowledgeBase
        from rag.storage.vectors import VectorStore

        with tempfile.TemporaryDirectory() as tmp:
            kb = KnowledgeBase(VectorStore.embedded(Path(tmp) / "chroma"), embedder, Path(tmp) / "keyword")
            embedder.embed(["warm up"])
            started = time.perf_counter()
            with PeakMemory() as memory:
                report = kb.ingest([path], "Large")
            out |= {"index_seconds": time.perf_counter() - started, "index_peak_mb": (memory.peak - memory.before) / 2**20,
                    "indexed": report.count("indexed")}
            kb.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", action="store_true", help="also index the PDF whole, embedding included")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = {"PDF, 2,000 pages": make_pdf(folder / "large.pdf"), "XLSX, 200,000 rows": make_xlsx(folder / "large.xlsx")}
        print(f"generated in {time.perf_counter() - started:.0f}s: "
              + ", ".join(f"{name} {path.stat().st_size / 2**20:.1f} MB" for name, path in files.items()))
        print(f"{'file':20}{'pages':>7}{'chunks':>8}{'read+chunk s':>14}{'peak MB above start':>21}")
        for name, path in files.items():
            index = args.index and path.suffix == ".pdf"
            command = [sys.executable, __file__, "--measure", str(path)] + (["--index"] if index else [])
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{name:20}{r['pages']:>7}{r['chunks']:>8}{r['seconds']:>14.1f}{r['peak_mb']:>21.0f}"
                  f"   (the process held {r['before_mb']:.0f} MB with the tokenizer before)")
            if index:
                print(f"{'':20}indexed whole in {r['index_seconds']:.0f}s, peak {r['index_peak_mb']:.0f} MB above start")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]), "--index" in sys.argv)))
    else:
        main()
