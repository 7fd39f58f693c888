"""Run an ingest in a child process and report each step on stdout, so a test can kill it.

    ingest_worker.py DATA CORPUS             an embedded store in DATA/chroma
    ingest_worker.py DATA CORPUS PORT        a Chroma server on loopback PORT (keyword index in DATA)
"""

from __future__ import annotations

import sys
from pathlib import Path

from rag import offline

offline.enforce()

from rag.embedding import Embedder  # noqa: E402
from rag.indexing.ingest import ChunkOptions, Ingestor  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.storage.vectors import VectorStore  # noqa: E402


def main() -> None:
    data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    store = VectorStore.server("127.0.0.1", int(sys.argv[3])) if len(sys.argv) > 3 else VectorStore.embedded(data / "chroma")
    kb = KnowledgeBase(store, Embedder(), data / "keyword")
    stored, keyword = kb._collection("Docs", create=True)
    ingestor = Ingestor(stored, keyword, kb.embedder, ChunkOptions(64, 8), batch_chunks=16)

    def progress(state) -> None:
        print(f"step files={state.files_done} chunks={state.chunks_done}", flush=True)

    report = ingestor.run([corpus], progress)
    print(f"done indexed={report.count('indexed')}", flush=True)


if __name__ == "__main__":
    main()
