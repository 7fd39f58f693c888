"""Answer-path latencies, each printed as p50/p95 over repeated runs.

1. A cache hit through ``KnowledgeBase.ask`` (fingerprint check included). Target p50 < 5 ms.
2. Retrieval (query embedding + vector search + keyword search + fusion) at 10,000 and
   100,000 chunks. Target p50 < 50 ms. The large collections are filled with real text but
   random unit vectors, since embedding 100,000 chunks on two cores would take hours and
   search time does not depend on what the vectors mean.
3. One full answer with the starter model, broken down by stage.

    python bench/ask.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))

from rag import offline  # noqa: E402

offline.enforce()

from corpus import paragraphs  # noqa: E402

from engine import LlamaEngine, LlamaSettings  # noqa: E402
from engine.catalog import starter_model_path  # noqa: E402
from rag.answering.answer_cache import AnswerCache  # noqa: E402
from rag.answering.ask import Answered, AskOptions  # noqa: E402
from rag.documents import Chunk  # noqa: E402
from rag.embedding import Embedder  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.storage.collection import chunk_row  # noqa: E402
from rag.storage.manifest import INDEXED, FileRecord  # noqa: E402
from rag.storage.vectors import VectorStore  # noqa: E402

QUERIES = [
    "how do I parse command line arguments", "compress a file with gzip", "thread safe queue", "hash a password",
    "read a CSV file with a custom delimiter", "what is a named tuple", "schedule a function call later",
    "random sample without replacement", "how to create a temporary directory", "format dates in UTC",
]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms"


def fill(kb: KnowledgeBase, name: str, chunks: int, texts: list[str]) -> None:
    """A collection of ``chunks`` chunks: real text, random unit vectors, 100 chunks per file."""
    stored, keyword = kb._collection(name, create=True)
    rng = np.random.default_rng(0)
    per_file = 100
    for f in range(chunks // per_file):
        key = f"bench{f:06d}"
        items = [Chunk(texts[(f * per_file + i) % len(texts)], i * 1000, i * 1000 + 900, 1, None, i) for i in range(per_file)]
        vectors = rng.normal(size=(per_file, kb.embedder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids, documents, metadatas = zip(*(chunk_row(key, f"/bench/{key}.txt", key, c) for c in items), strict=True)
        stored.add_chunks(ids, documents, metadatas, vectors)
        keyword.replace(key, key, [(f"{key}:{c.index}", c.text) for c in items])
        stored.put_file(FileRecord(key, Path(f"/bench/{key}.txt"), INDEXED, key, chunks=per_file, path_text=f"/bench/{key}.txt"))
    stored.bump_generation()
    keyword.set_generation(stored.generation())


def main() -> None:
    embedder = Embedder()
    embedder.embed(["warm up"])
    texts = paragraphs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = LlamaEngine(LlamaSettings(starter_model_path(), context_size=8192), idle_thread=False)
        kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword", model=engine,
                           cache=AnswerCache(root / "cache"))
        docs = root / "docs"
        docs.mkdir()
        (docs / "pump.txt").write_text("The pump in hall 3 needs oil every 200 hours. Replace its filter every spring.\n")
        kb.ingest([docs], "Small")

        # 3. one full answer, by stage (also fills the cache for 1.)
        result = next(e.result for e in kb.ask("How often does the pump need oil?", "Small", AskOptions(answer_tokens=64))
                      if isinstance(e, Answered))
        t = result.timings
        print(f"full answer (starter model, {result.usage.prompt} prompt + {result.usage.completion} answer tokens): "
              f"cache {t.cache * 1000:.1f} ms, retrieval {t.retrieval * 1000:.0f} ms, packing {t.packing * 1000:.1f} ms, "
              f"model load {t.load * 1000:.0f} ms, first token {t.first_token * 1000:.0f} ms, "
              f"generation {t.generation * 1000:.0f} ms, total {t.total * 1000:.0f} ms")

        # 1. cache hits
        samples = []
        for i in range(200):
            started = time.perf_counter()
            events = list(kb.ask("how often does the pump need oil" + "?" * (i % 3), "Small"))
            samples.append(time.perf_counter() - started)
            assert events[-1].result.cached == "exact"
        print(f"cache hit through ask(), 200 runs:            {percentiles(samples)}   (target p50 < 5 ms)")

        # 2. retrieval at scale
        for size in (10_000, 100_000):
            started = time.perf_counter()
            fill(kb, f"Scale{size}", size, texts)
            built = time.perf_counter() - started
            for query in QUERIES:  # warm the caches
                kb.search(query, f"Scale{size}", limit=10)
            samples = []
            for _ in range(5):
                for query in QUERIES:
                    started = time.perf_counter()
                    kb.search(query, f"Scale{size}", limit=10)
                    samples.append(time.perf_counter() - started)
            print(f"retrieval at {size:>7,} chunks ({len(samples)} queries):   {percentiles(samples)}   "
                  f"(target p50 < 50 ms; collection built in {built:.0f} s)")
        engine.close()


if __name__ == "__main__":
    main()
