"""A collection past SQLite's 32,766 variables per statement: every facade call still works.

chromadb's local ``get()`` binds one SQL variable per row it returns, so a store that read a
whole manifest or collection at once failed past 32,766 files ("too many SQL variables").
The collection here holds 33,000 files of one passage each (66,000 rows: manifest and chunks), written through the store's
own calls (no embedding: vectors near real ones, made from a few real embeddings and noise).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from samples import PROSE, rows_read

from archivist.extract import ExtractionProgress, extract
from engine import CancelToken
from rag.answering.ask import Answered, AskOptions
from rag.answering.checkup import CheckQuestion
from rag.answering.retrieval import SearchMode
from rag.answering.schemas import resolve
from rag.documents import Chunk, document_key
from rag.errors import ReembedCancelled
from rag.knowledge_base import KnowledgeBase, StepProgress
from rag.storage.collection import chunk_row
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import INDEXED, PENDING, FileRecord
from rag.storage.vectors import VectorStore

FILES = 33_000  # each one passage: 33,000 manifest rows (past the 32,766 one SQL statement holds) and 33,000 chunks
NAME = "Big"


@dataclass(frozen=True, slots=True)
class Big:
    kb: KnowledgeBase
    folder: Path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, embedder, starter_engine) -> Iterator[Big]:
    root = tmp_path_factory.mktemp("big")
    store = VectorStore.embedded(root / "chroma")
    info = store.create(NAME, embedder.model_id, embedder.dimension)
    stored = store.open(info)
    # Written an hour ago: a re-sync reads the rows written since its last, less a margin of minutes for
    # the machines' clocks, so rows written just now would all be read once more.
    stored.clock = lambda: time.time() - 3600
    base = embedder.embed(PROSE)
    noise = np.random.default_rng(0).normal(0, 0.02, (FILES, base.shape[1])).astype(np.float32)
    vectors = base[np.arange(FILES) % len(PROSE)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records, rows = [], []
    for i in range(FILES):
        path = root / "docs" / f"{i // 1000:02d}" / f"note{i:05d}.txt"
        text = f"{PROSE[i % len(PROSE)]} (note {i})"
        key, path_text = document_key(path), str(path)
        rows.append(chunk_row(key, path_text, f"h{i}", Chunk(text, 0, len(text), None, None)))
        records.append(FileRecord(key, path, INDEXED, f"h{i}", chunks=1, size=len(text), path_text=path_text))
    ids, texts, metadatas = zip(*rows, strict=True)
    stored.add_chunks(ids, texts, metadatas, vectors)  # in one call: the store splits what Chroma cannot take at once
    stored.put_files(records)
    keyword = KeywordIndex(root / "keyword" / info.id)
    by_key = {m["doc"]: [(i, t)] for i, t, m in rows}
    keyword.sync({r.key: r.content_hash for r in records}, by_key.__getitem__, "built")
    keyword.close()
    stored.bump_generation()  # as another client would: the first search re-syncs the keyword index
    kb = KnowledgeBase(store, embedder, root / "keyword", model=starter_engine)
    yield Big(kb, root)
    kb.close()


def test_status_lists_every_file(big: Big):
    status = big.kb.status(NAME)
    assert len(status.files) == FILES and status.chunks == FILES
    assert status.count(INDEXED) == FILES


def test_search_in_every_mode(big: Big):
    passages = big.kb.search("the lighthouse keeper's ledger of passing ships", NAME, limit=5)
    assert len(passages) == 5 and all("lighthouse" in p.text for p in passages)
    assert big.kb.search("granite rocks salt spray", NAME, limit=3, mode=SearchMode(vector=False))
    assert big.kb.search("a ship's ledger", NAME, limit=3, mode=SearchMode(keyword=False))


def test_ingest_search_and_remove_one_more_file(big: Big):
    extra = big.folder / "extra" / "pump.txt"
    extra.parent.mkdir(exist_ok=True)
    extra.write_text("The bilge pump of the ferry Aurelia needs oil every ninety running hours.\n")
    assert big.kb.ingest([extra], NAME).count(INDEXED) == 1
    try:
        assert big.kb.status(NAME).chunks == FILES + 1
        question = "how often does the bilge pump need oil"
        assert extra in [p.path for p in big.kb.search(question, NAME, limit=3)]
        big.kb.add_check(NAME, CheckQuestion(question, "pump.txt"))
        assert big.kb.run_checkup(NAME).run.hit_rate == 1.0
    finally:
        assert [o.status for o in big.kb.remove([extra], NAME)] == ["removed"]
    assert big.kb.status(NAME).chunks == FILES


def test_one_file_s_ingest_and_removal_read_a_few_manifest_rows(big: Big, monkeypatch: pytest.MonkeyPatch):
    """Ingesting or removing one file reads its own manifest row and the unfinished ones, not every
    file's (issue 30: 7.6 s for one file among 44,434); what a killed run left is still finished."""
    big.kb.warm(NAME)  # the keyword index in step with the store (else the first ingest re-syncs it from every row)
    stored, _ = big.kb._collection(NAME)
    read = rows_read(monkeypatch, stored._files)
    folder = big.folder / "few"
    folder.mkdir()
    left, valve = folder / "left.txt", folder / "valve.txt"
    left.write_text("The harbour crane was greased on Monday.\n")
    valve.write_text("The relief valve of the boiler opens at twelve bar.\n")
    # As a run killed after its first write leaves a file: pending, its chunks not yet written.
    stored.put_file(FileRecord(document_key(left), left, PENDING, "stale", path_text=str(left)))
    try:
        report = big.kb.ingest([valve], NAME)
        assert sorted((o.path.name, o.status) for o in report.outcomes) == [("left.txt", INDEXED), ("valve.txt", INDEXED)]
        valve.write_text("The relief valve of the boiler opens at fourteen bar.\n")
        assert big.kb.ingest([valve], NAME).count(INDEXED) == 1
    finally:
        assert sorted(o.status for o in big.kb.remove([valve, left], NAME)) == ["removed", "removed"]
    assert sum(read) < 50, read  # a few rows a call, of 33,000
    assert big.kb.status(NAME).chunks == FILES


def test_ask_and_extract(big: Big):
    events = list(big.kb.ask("Where did the keeper log the ships?", NAME, AskOptions(use_cache=False, answer_tokens=48)))
    assert isinstance(events[-1], Answered) and events[-1].result.sources

    # Extraction lists every indexed file, then asks of each (as above): stopped before the first.
    cancel = CancelToken()
    seen: list[ExtractionProgress] = []

    def stop(step: ExtractionProgress) -> None:
        seen.append(step)
        cancel.cancel()

    assert list(extract(big.kb, NAME, resolve("key_facts"), stop, cancel)) == []
    assert seen[0].total == FILES and seen[0].current is not None and seen[0].current.name == "note00000.txt"


def test_reembed_starts_and_stops_without_loss(big: Big):
    cancel = CancelToken()
    seen: list[StepProgress] = []

    def stop(step: StepProgress) -> None:
        seen.append(step)
        cancel.cancel()

    with pytest.raises(ReembedCancelled):
        big.kb.reembed(NAME, stop, cancel, batch=8)
    assert [(s.done, s.total) for s in seen] == [(8, FILES)]
    assert big.kb.status(NAME).chunks == FILES
    assert big.kb.search("photosynthesis and chlorophyll", NAME, limit=1)


def test_keyword_search_gives_the_best_rows_of_all_matches_while_skipping_most(tmp_path: Path):
    """Tantivy's top k (block-max WAND: it skips what cannot reach the k-th score) is the top of
    every match ranked: a row holding a common term many times still enters; a common term alone
    still ranks; a scope of any number of documents filters and adds nothing to a score."""
    import math
    import random
    from collections import Counter

    from rag.storage.keyword_index import KeywordIndex, terms

    random.seed(5)
    filler = "pump valve gasket filter motor belt hose panel switch relay".split()
    texts = ([f"zebra {random.choice(filler)}" for _ in range(40)]  # the rare term, short rows
             + ["zebra cat cat cat"] * 3  # the best rows for "zebra cat": not the best on "zebra" alone
             + [f"cat {random.choice(filler)} {random.choice(filler)}" for _ in range(150)]
             + [f"alpha {random.choice(filler)}" for _ in range(120)] + [f"beta beta {random.choice(filler)}"] * 120
             + [" ".join(random.choices(filler, k=6)) for _ in range(3000)])
    index = KeywordIndex(tmp_path / "kw")
    for lo in range(0, len(texts), 500):  # several segments, as an index written over time has
        for i in range(lo, min(lo + 500, len(texts))):
            index.append(f"d{i}", [(f"c{i}", texts[i], {})])
        for i in range(lo, min(lo + 500, len(texts))):
            index.finish(f"d{i}", f"h{i}")
    rows = [terms(t) for t in texts]
    average = sum(map(len, rows)) / len(rows)

    def bm25(query: str) -> list[tuple[str, float]]:  # Tantivy's formula (Lucene's idf), over every row
        words = list(dict.fromkeys(terms(query, keep_stopwords=False)))
        held = {w: sum(w in r for r in rows) for w in words}
        idf = {w: math.log(1 + (len(rows) - n + 0.5) / (n + 0.5)) for w, n in held.items()}
        scored = []
        for i, row in enumerate(rows):
            counts, norm = Counter(row), 1.2 * (1 - 0.75 + 0.75 * len(row) / average)
            score = sum(idf[w] * counts[w] * 2.2 / (counts[w] + norm) for w in words if counts[w])
            if score:
                scored.append((f"c{i}", score))
        return sorted(scored, key=lambda hit: -hit[1])

    for query in ("zebra cat", "alpha beta", "cat", "zebra pump relay", "beta gasket", "cat zebra hose", "pump"):
        exact = bm25(query)
        found = index.search(query, 5)
        assert len(found) == 5, query
        # Lengths are stored to one byte (close, not exact): the same rows, scores within 1%.
        for (chunk, score), (_, best) in zip(found, exact, strict=False):
            assert abs(score - best) <= 0.01 * best, query
            assert chunk in {c for c, s in exact if s >= exact[4][1] * 0.99}, query
    scope = [f"d{i}" for i in range(40, 43)] + [f"x{i}" for i in range(40_000)]  # any number of documents
    assert {c for c, _ in index.search("zebra cat", 5, docs=scope)} == {"c40", "c41", "c42"}
    assert index.search("zebra cat", 5, docs=scope)[0][1] == pytest.approx(index.search("zebra cat", 1)[0][1])
    index.close()


def test_a_search_s_resync_lets_another_process_s_writing_be(tmp_path: Path):
    """Two processes on one data folder (two replicas on one home, the app and the command line):
    while one writes the keyword index, the other's search-time re-sync waits a second, not 30,
    and searches the index as it is; it syncs at a later search."""
    import time

    from rag.storage.keyword_index import KeywordIndex

    writing, searching = KeywordIndex(tmp_path / "kw"), KeywordIndex(tmp_path / "kw")
    writing.begin("d1")
    writing.append("d1", [("d1:0", "zebra crossing", {})])  # the writer is held: its terms are not yet shown
    started = time.monotonic()
    assert searching.sync({"d2": "h2"}, lambda doc: [("d2:0", "zebra stripes")], "g2") == 0
    assert time.monotonic() - started < 5 and searching.generation != "g2"  # not in step yet: tried again later
    writing.finish("d1", "h1")
    writing.close()  # lets the writer go (an idle one goes by itself a second after its last change)
    assert searching.sync({"d1": "h1", "d2": "h2"}, lambda doc: [(f"{doc}:0", "zebra stripes")], "g2") == 1
    assert searching.generation == "g2" and {c for c, _ in searching.search("zebra", 5)} == {"d1:0", "d2:0"}
    searching.close()
