"""A knowledge base of N passages: insert rate, search latency per mode, memory, disk, cold start.

The passages are made from real English prose (the standard library's docstrings, see
``bench/corpus.py``): each joins four or five paragraphs and swaps a few of their words for
others of the same prose, so that no two are alike. Their vectors are near real ones: the
mean of their paragraphs' all-MiniLM-L6-v2 vectors plus a little noise. Everything is
written through the store's own calls, as an ingest writes it (manifest rows, keyword
index, chunks with vectors), without embedding each passage. Searches go through the
facade, as ``archivist-cli search`` does, in a new process (the first one timed as a cold
start), with the query's embedding included.

    python bench/scale.py --passages 100000 [--folder DIR] [--queries 50] [--keep]
    python bench/scale.py --search DIR      (only the searches, on a collection built before)
    python bench/scale.py --passages N --keyword-only   (the keyword index alone: written and searched
                                                         through its own calls, without Chroma)

Timings are of this machine as it was at the time: 2 cores, shared with other work.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # a cold start counts the imports too

import argparse
import cProfile
import json
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from io import StringIO
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))  # for corpus.py (bench/engine.py must not hide the engine package)

from rag import offline

offline.enforce()

from rag.answering.retrieval import SearchMode
from rag.documents import Chunk
from rag.embedding import Embedder
from rag.knowledge_base import KnowledgeBase
from rag.storage.collection import chunk_row
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import INDEXED, PENDING, FileRecord
from rag.storage.vectors import VectorStore

COLLECTION = "Scale"
_GROUP = 256  # passages per write, about what an ingest's embedding batch holds


def passages(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[int]]:
    """``n`` passages, each as its text and the paragraphs it was made of, and the files they
    fall into (a passage count per file, 1 to 19, ten on average)."""
    from corpus import paragraphs

    source = paragraphs()
    words = sorted({w for p in source for w in p.split() if w.isalpha()})
    rng = random.Random(seed)
    texts: list[str] = []
    parts = np.zeros((n, 5), dtype=np.int32)
    for i in range(n):
        chosen = rng.sample(range(len(source)), rng.choice((4, 5)))
        parts[i, : len(chosen)] = chosen
        parts[i, len(chosen) :] = -1
        tokens = " ".join(source[c] for c in chosen).split()
        for _ in range(max(1, len(tokens) // 20)):  # one word in twenty changes
            tokens[rng.randrange(len(tokens))] = rng.choice(words)
        texts.append(" ".join(tokens))
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(min(rng.randint(1, 19), n - sum(sizes)))
    return texts, parts, sizes


def vectors(parts: np.ndarray, seed: int = 0) -> np.ndarray:
    """Near-real vectors: the mean of the passage's paragraphs' real vectors, plus noise, unit length."""
    from corpus import paragraphs

    real = Embedder().embed(paragraphs())
    rng = np.random.default_rng(seed)
    mask = (parts >= 0)[..., None]
    mean = (real[np.maximum(parts, 0)] * mask).sum(axis=1) / mask.sum(axis=1)
    noisy = mean + rng.normal(0, 0.02, mean.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def build(folder: Path, n: int) -> dict[str, float]:
    """Write ``n`` passages into ``folder`` as an ingest would; what it took."""
    texts, parts, sizes = passages(n)
    vecs = vectors(parts)
    embedder = Embedder()
    store = VectorStore.embedded(folder / "chroma")
    info = store.create(COLLECTION, embedder.model_id, embedder.dimension)
    stored = store.open(info)
    keyword = KeywordIndex(folder / "keyword" / info.id)
    docs = folder / "docs"
    started = time.perf_counter()
    first = 0
    group: list[tuple[FileRecord, list[tuple[str, str, dict]]]] = []

    def write(group: list[tuple[FileRecord, list[tuple[str, str, dict]]]], lo: int) -> None:
        stored.put_files([record for record, _ in group])
        for record, rows in group:
            keyword.begin(record.key)
            keyword.append(record.key, rows)
        rows = [row for _, file_rows in group for row in file_rows]
        ids, documents, metadatas = zip(*rows, strict=True)
        stored.add_chunks(ids, documents, metadatas, vecs[lo : lo + len(rows)])
        for record, file_rows in group:
            keyword.finish(record.key, record.content_hash)
            record.status, record.chunks, record.indexed_at = INDEXED, len(file_rows), time.time()
        stored.put_files([record for record, _ in group])
        stored.bump_generation()

    lo = 0
    for number, size in enumerate(sizes):
        path = docs / f"{number // 1000:03d}" / f"file{number:06d}.txt"
        key, path_text, digest = f"k{number:07d}", str(path), f"h{number}"
        rows = [chunk_row(key, path_text, digest, Chunk(texts[first + i], i * 1000, i * 1000 + len(texts[first + i]),
                                                         None, None, i)) for i in range(size)]
        group.append((FileRecord(key, path, PENDING, digest, size=size * 1000, path_text=path_text), rows))
        first += size
        if first - lo >= _GROUP:
            write(group, lo)
            lo, group = first, []
            if first // 20_000 != (first - len(rows)) // 20_000 or first < 2 * _GROUP:
                print(f"  {first} passages, {first / (time.perf_counter() - started):.0f}/s", file=sys.stderr, flush=True)
    if group:
        write(group, lo)
    keyword.set_generation(stored.generation())
    seconds = time.perf_counter() - started
    keyword.close()
    return {"passages": n, "files": len(sizes), "insert_per_s": n / seconds, "build_s": seconds,
            "small_files": small_file_writes(store, vecs[:1500], texts[:1500])}


def small_file_writes(store: VectorStore, vecs: np.ndarray, texts: list[str]) -> dict[str, float]:
    """Passages per second written for files of 3 passages: one write per file (as the ingest
    wrote them before) and the files' passages together (as it writes them now)."""
    rates = {}
    for label, per_call in (("per_file", 3), ("together", _GROUP)):
        info = store.create(f"small-{label}", "bench", vecs.shape[1])
        stored = store.open(info)
        rows = [chunk_row(f"s{i // 3}", f"/s/{i // 3}", "h", Chunk(t, 0, len(t), None, None, i % 3)) for i, t in enumerate(texts)]
        started = time.perf_counter()
        for lo in range(0, len(rows), per_call):
            ids, documents, metadatas = zip(*rows[lo : lo + per_call], strict=True)
            stored.add_chunks(ids, documents, metadatas, vecs[lo : lo + per_call])
        rates[label] = len(rows) / (time.perf_counter() - started)
        store.delete(info.name)
    return rates


def queries(count: int, seed: int = 1) -> list[str]:
    """Questions in the corpus's words: a run of six to ten words from a paragraph."""
    from corpus import paragraphs

    source = paragraphs()
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        tokens = rng.choice(source).split()
        length = rng.randint(6, 10)
        if len(tokens) > length:
            start = rng.randrange(len(tokens) - length)
            out.append(" ".join(tokens[start : start + length]).strip(".,:;()"))
    return out


def disk(folder: Path, n: int) -> dict[str, float]:
    """Bytes per passage, whole and by part (Chroma's SQLite by table, its vector index, the keyword index)."""
    import sqlite3

    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size

    chroma = folder / "chroma"
    parts = {"chroma sqlite": size(chroma / "chroma.sqlite3"),
             "vector index (hnsw)": sum(size(p) for p in chroma.iterdir() if p.is_dir()),
             "keyword index": size(folder / "keyword")}
    try:
        db = sqlite3.connect(f"file:{chroma / 'chroma.sqlite3'}?mode=ro", uri=True)
        for name, pages in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"):
            parts[f"  {name}"] = pages
        db.close()
    except sqlite3.Error as exc:  # dbstat is not compiled into every SQLite
        print(f"  (no per-table sizes: {exc})", file=sys.stderr)
    return {name: value / n for name, value in parts.items()}


def search_run(folder: Path, count: int) -> dict[str, object]:
    """In this (new) process: the first search (a cold start), then ``count`` queries per mode,
    the facade calls on the whole collection, memory, and the profile of one fused query."""
    parts = {"imports": time.perf_counter() - _STARTED}
    t = time.perf_counter()
    kb = KnowledgeBase(VectorStore.embedded(folder / "chroma"), Embedder(), folder / "keyword")
    asked = queries(count)
    stored, keyword = kb._collection(COLLECTION)
    parts["open the store and the collection"] = time.perf_counter() - t
    t = time.perf_counter()
    vector = kb.embedder.embed_query(asked[0])
    parts["embedding model's first query"] = time.perf_counter() - t
    t = time.perf_counter()
    stored.query(vector, 10)
    parts["Chroma's first query (its HNSW index read)"] = time.perf_counter() - t
    t = time.perf_counter()
    keyword.search(asked[0], 10)
    parts["keyword index's first search"] = time.perf_counter() - t
    t = time.perf_counter()
    kb.search(asked[0], COLLECTION, limit=10)
    parts["the first fused search, then"] = time.perf_counter() - t
    cold = time.perf_counter() - _STARTED
    result: dict[str, object] = {"cold_first_search_s": cold, "cold_parts": parts}
    for label, mode in {"fused": SearchMode(), "vector": SearchMode(keyword=False),
                        "keyword": SearchMode(vector=False)}.items():
        times = []
        for q in asked:
            t = time.perf_counter()
            kb.search(q, COLLECTION, limit=10, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        result[label] = (statistics.median(times), float(np.percentile(times, 95)))
    result["rss_gb"] = _rss_gb()
    result["facade"] = facade_calls(kb, folder)
    result["profile"] = profile(kb, asked)
    kb.close()
    return result


def facade_calls(kb: KnowledgeBase, folder: Path) -> dict[str, object]:
    """status, ingest of one more file and its removal, on the whole collection: seconds each (or the error)."""
    extra, another = folder / "extra" / "one-more.txt", folder / "extra" / "another.txt"
    extra.parent.mkdir(exist_ok=True)
    extra.write_text("A note written after the rest: the scale benchmark's one more file, about vector stores.\n")
    another.write_text("Another note written after the rest, about keyword indexes.\n")
    out: dict[str, object] = {}
    # The first ingest ends with the keyword index's first re-sync by stamps, which reads the whole manifest
    # once (rows written before stamps existed, or an index that never re-synced); the second shows the rest.
    for name, call in (("status", lambda: len(kb.status(COLLECTION).files)),
                       ("ingest one file", lambda: kb.ingest([extra], COLLECTION).count("indexed")),
                       ("ingest another", lambda: kb.ingest([another], COLLECTION).count("indexed")),
                       ("remove both", lambda: len(kb.remove([extra, another], COLLECTION)))):
        t = time.perf_counter()
        try:
            value = call()
            out[name] = f"{time.perf_counter() - t:.2f} s ({value})"
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed and goes on
            out[name] = f"FAILED: {str(exc)[:120]}"
    return out


def profile(kb: KnowledgeBase, asked: list[str]) -> str:
    """Where one fused query's time goes: its steps, then cProfile's top functions."""
    query = asked[len(asked) // 2]
    stored, keyword = kb._collection(COLLECTION)
    steps = {}
    t = time.perf_counter()
    vector = kb.embedder.embed_query(query)
    steps["embed query"] = time.perf_counter() - t
    t = time.perf_counter()
    stored.state()
    steps["manifest state"] = time.perf_counter() - t
    t = time.perf_counter()
    stored.query(vector, 50)
    steps["chroma query"] = time.perf_counter() - t
    t = time.perf_counter()
    keyword.search(query, 50)
    steps["keyword search"] = time.perf_counter() - t
    profiler = cProfile.Profile()
    profiler.enable()
    t = time.perf_counter()
    kb.search(query, COLLECTION, limit=10)
    total = time.perf_counter() - t
    profiler.disable()
    text = StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(14)
    lines = [f"query {query!r}: fused search {total * 1000:.1f} ms; "
             + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in steps.items())]
    body = text.getvalue().splitlines()
    start = next((i for i, line in enumerate(body) if "ncalls" in line), 0)
    return "\n".join(lines + body[start : start + 16])


def _rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def keyword_only(n: int, count: int) -> None:
    """The keyword index alone at ``n`` passages: written file by file as an ingest writes it
    (``begin``, ``append``, ``finish``), then searched with the benchmark's queries (their terms
    split as a search splits them, the index opened afresh), and its size on disk."""
    texts, _, sizes = passages(n)
    folder = Path(tempfile.mkdtemp(prefix="archivist-keyword-"))
    try:
        keyword = KeywordIndex(folder / "keyword")
        started, first = time.perf_counter(), 0
        for number, size in enumerate(sizes):
            key = f"k{number:07d}"
            keyword.begin(key)
            keyword.append(key, [(f"{key}:{i}", texts[first + i], {}) for i in range(size)])
            first += size
            if number % 25 == 24 or first == n:  # about one group of _GROUP passages, as build() writes
                for done in range(number - number % 25, number + 1):
                    keyword.finish(f"k{done:07d}", f"h{done}")
        built = time.perf_counter() - started
        keyword.close()
        opened = time.perf_counter()
        keyword = KeywordIndex(folder / "keyword")
        asked = queries(count)
        keyword.search(asked[0], 50)
        cold = time.perf_counter() - opened
        times = []
        for q in asked:
            t = time.perf_counter()
            keyword.search(q, 50)
            times.append((time.perf_counter() - t) * 1000)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        keyword.close()
        print(f"keyword index alone, {n:,} passages in {len(sizes):,} files: written {n / built:.0f} passages/s; "
              f"first search after opening {cold * 1000:.0f} ms; search p50 {statistics.median(times):.1f} ms, "
              f"p95 {float(np.percentile(times, 95)):.1f} ms; {size / n:.0f} bytes/passage on disk")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the folder built")
    parser.add_argument("--search", type=Path, metavar="DIR", help="only search a collection built before (one process)")
    parser.add_argument("--keyword-only", action="store_true", help="the keyword index alone, without Chroma")
    args = parser.parse_args()
    if args.keyword_only:
        keyword_only(args.passages, args.queries)
        return
    if args.search:
        print(json.dumps(search_run(args.search, args.queries)))
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="archivist-scale-"))
    try:
        built = build(folder, args.passages)
        searched = json.loads(subprocess.run(
            [sys.executable, __file__, "--search", str(folder), "--queries", str(args.queries)],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()[-1])
        per_passage = disk(folder, args.passages)
    finally:
        if not args.keep and not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    small = built.pop("small_files")
    print(f"\n{args.passages:,} passages in {built['files']:,.0f} files; built in {built['build_s']:.0f} s "
          f"({built['insert_per_s']:.0f} passages/s); small files (3 passages): {small['per_file']:.0f}/s written "
          f"one file a call, {small['together']:.0f}/s together")
    print("| passages (files) | fused p50 / p95 | vector p50 / p95 | keyword p50 / p95 | cold first search | RSS | disk/passage |")
    print("|---|---|---|---|---|---|---|")
    ms = {m: "{:.0f} / {:.0f} ms".format(*searched[m]) for m in ("fused", "vector", "keyword")}
    total = sum(v for k, v in per_passage.items() if not k.startswith(" "))
    print(f"| {args.passages:,} ({built['files']:,.0f}) | {ms['fused']} | {ms['vector']} | {ms['keyword']} | "
          f"{searched['cold_first_search_s']:.1f} s | {searched['rss_gb']:.2f} GB | {total / 1024:.1f} KB |")
    print("\ndisk per passage: " + ", ".join(f"{k.strip()} {v / 1024:.2f} KB" for k, v in per_passage.items()))
    print("facade calls: " + ", ".join(f"{k}: {v}" for k, v in searched["facade"].items()))
    print("cold first search, in a new process: " + ", ".join(f"{k} {v:.2f} s" for k, v in searched["cold_parts"].items()))
    print("\nprofile of one fused query:\n" + searched["profile"])


if __name__ == "__main__":
    main()
