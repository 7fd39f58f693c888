"""A search while an ingest runs: how long the person waits, against the same search idle.

The knowledge base of the app (one process: the real store, keyword index and embedding
model) ingests a generated corpus of PDFs on one thread while another asks a search every
half second, as the window does when someone types a question during indexing. Prints the
median and worst search time idle and during the ingest, and the ingest's own time (with
searches against it) next to the same ingest alone, so that a gain for searches that costs
the ingest shows.

    python bench/contention.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the packages before bench/engine.py

QUESTIONS = ["how is the pump maintained", "when was the treaty signed", "which oil for the bearings",
             "what does the warranty cover", "how long does the battery last"]


def main() -> None:
    from rag import offline

    offline.enforce()
    from corpus import write_pdfs

    from rag.embedding import Embedder
    from rag.indexing.ingest import ChunkOptions
    from rag.knowledge_base import KnowledgeBase
    from rag.storage.vectors import VectorStore

    embedder = Embedder()
    embedder.embed(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = write_pdfs(root / "corpus", pages=120, pages_per_file=10)[0].parent
        seed = write_pdfs(root / "seed", pages=10, pages_per_file=10)[0].parent

        def fresh(name: str) -> KnowledgeBase:
            kb = KnowledgeBase(VectorStore.embedded(root / name / "chroma"), embedder, root / name / "keyword", ChunkOptions())
            kb.ingest([seed], "Bench")  # something to search from the start
            return kb

        def searches(kb: KnowledgeBase, until: threading.Event | None, count: int) -> list[float]:
            times: list[float] = []
            for i in range(count):
                if until is not None and until.is_set():
                    break
                started = time.perf_counter()
                kb.search(QUESTIONS[i % len(QUESTIONS)], "Bench", limit=5)
                times.append(time.perf_counter() - started)
                time.sleep(0.5)
            return times

        kb = fresh("alone")
        idle = searches(kb, None, 10)
        started = time.perf_counter()
        kb.ingest([corpus], "Bench")
        alone = time.perf_counter() - started

        kb = fresh("together")
        done = threading.Event()
        took: dict[str, float] = {}

        def ingest() -> None:
            started = time.perf_counter()
            kb.ingest([corpus], "Bench")
            took["ingest"] = time.perf_counter() - started
            done.set()

        worker = threading.Thread(target=ingest)
        worker.start()
        time.sleep(1.0)
        during = searches(kb, done, 10_000)
        worker.join()
        print("during, in order (ms):", " ".join(f"{t * 1000:.0f}" for t in during))

    def row(name: str, times: list[float]) -> str:
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        return (f"{name:<26} median {statistics.median(times) * 1000:6.0f} ms   90th percentile {p90 * 1000:6.0f} ms   "
                f"worst {max(times) * 1000:6.0f} ms   ({len(times)} searches)")

    print(row("search, idle", idle))
    print(row("search, during ingest", during))
    print(f"{'median ratio':<26} {statistics.median(during) / statistics.median(idle):.1f}x idle")
    print(f"{'ingest alone':<26} {alone:7.1f} s")
    print(f"{'ingest, searched':<26} {took['ingest']:7.1f} s   ({took['ingest'] / alone:.2f}x alone)")


if __name__ == "__main__":
    main()
