"""Killed at any moment (kill -9), an ingest leaves an index the next run can trust and finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from samples import PROSE

from rag.answering.retrieval import SearchMode
from rag.knowledge_base import KnowledgeBase
from rag.storage.open_collections import sync_keyword

WORKER = Path(__file__).with_name("ingest_worker.py")


def _start(data: Path, corpus: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(data), str(corpus)], stdout=subprocess.PIPE, text=True, env=env
    )


def _kill_after(proc: subprocess.Popen, steps: int) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith("step") and "chunks=0" not in line:
            steps -= 1
            if steps <= 0:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    return seen


def _assert_consistent(kb: KnowledgeBase) -> None:
    stored, keyword = kb._collection("Docs")
    files = stored.files()
    assert all(r.status == "indexed" for r in files.values()), {r.path.name: r.status for r in files.values()}
    rows = stored._chunks.get(include=["metadatas"])
    per_doc = Counter(m["doc"] for m in rows["metadatas"])
    assert len(rows["ids"]) == len(set(rows["ids"]))
    for key, record in files.items():
        assert per_doc[key] == record.chunks, f"{record.path.name}: {per_doc[key]} chunks stored, manifest says {record.chunks}"
        indexes = sorted(m["index"] for m in rows["metadatas"] if m["doc"] == key)
        assert indexes == list(range(record.chunks))
        assert {m["hash"] for m in rows["metadatas"] if m["doc"] == key} == {record.content_hash}
    assert set(per_doc) == set(files)
    sync_keyword(stored, keyword)
    assert keyword.documents() == {k: r.content_hash for k, r in files.items()}
    assert keyword.chunks() == len(rows["ids"])


def test_kill_mid_ingest_then_resume(tmp_path: Path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "big.txt").write_text("\n\n".join(PROSE * 12))
    for i in range(12):
        (corpus / f"small{i:02}.txt").write_text(PROSE[i % 5] + f" Note number {i}.\n")
    data = tmp_path / "data"

    first = _kill_after(_start(data, corpus), steps=2)  # inside big.txt: chunks written, file unfinished
    assert not any(line.startswith("done") for line in first)
    second = _kill_after(_start(data, corpus), steps=4)  # big.txt committed, the small files' batch not yet written
    assert not any(line.startswith("done") for line in second)

    from rag.storage.vectors import VectorStore

    kb = KnowledgeBase(VectorStore.embedded(data / "chroma"), embedder, data / "keyword")
    stored, _ = kb._collection("Docs")
    assert any(r.status in ("pending", "words") for r in stored.files().values()), "the kill left nothing unfinished"
    pending = {r.key for r in stored.files().values() if r.status in ("pending", "words")}
    hits = kb.search("lighthouse keeper", "Docs", limit=50, mode=SearchMode(keyword=False))
    assert not {h.chunk_id.split(":")[0] for h in hits} & pending, "half-indexed chunks were served"

    report = kb.ingest([corpus], "Docs")
    assert report.count("failed") == 0
    assert report.count("indexed") + report.count("unchanged") == 13
    _assert_consistent(kb)
    assert kb.search("Note number 11", "Docs", limit=1, mode=SearchMode(vector=False))[0].path.name == "small11.txt"
