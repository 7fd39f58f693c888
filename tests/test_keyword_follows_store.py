"""A process's keyword index follows changes another process made to a shared store, reading
only the manifest rows written since it last synced (``rag.storage.open_collections.sync_keyword``).

Two knowledge bases on one embedded Chroma folder, as two processes (two replicas, the app and
the command line) would be, each with its own keyword folder: after each change A makes, B's
keyword index holds what a sync from scratch gives, and B read a few manifest rows, not every one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from samples import PROSE, rows_read

from rag.answering.retrieval import SearchMode
from rag.documents import Chunk, document_key, path_to_text
from rag.knowledge_base import KnowledgeBase
from rag.storage.collection import TOMBSTONE_LIFE, StoredCollection, chunk_row
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import INDEXED, REMOVED, WORDS, FileRecord
from rag.storage.open_collections import sync_keyword
from rag.storage.vectors import VectorStore

NAME = "Shared"
FILES = 30
HOUR = 3600.0
FEW = 8  # manifest rows a re-sync after one file's change may read: the generation's, the file's, a margin's worth


class Clock:
    """The stores' clock, moved by the test: a change an hour after the last is out of the re-sync's margin."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = HOUR) -> None:
        self.now += seconds


@dataclass
class Pair:
    """Process A, which changes the collection, and process B, which follows it, and what B read."""

    a: KnowledgeBase
    b: KnowledgeBase
    a_stored: StoredCollection
    b_stored: StoredCollection
    b_keyword: KeywordIndex
    clock: Clock
    folder: Path
    root: Path
    read: list[int]

    def b_follows(self, query: str) -> list[str]:
        """B searches (re-syncing its keyword index), and its index equals one synced from scratch;
        the names of the files B finds by keyword, and what B read of the manifest meanwhile."""
        self.clock.advance()
        self.read.clear()
        self.b.search(query, NAME, limit=3)
        fresh = KeywordIndex(self.root / "fresh" / str(self.clock.now))
        sync_keyword(self.a_stored, fresh)  # a sync from scratch, read through A (not counted)
        try:
            assert self.b_keyword.generation == fresh.generation == self.a_stored.generation()
            assert self.b_keyword.documents() == fresh.documents()
            assert self.b_keyword.words_only() == fresh.words_only()
            for words in (query, "ship lighthouse keeper", "sunlight sugar", "treaty war"):
                assert {c for c, _ in self.b_keyword.search(words, 200)} == {c for c, _ in fresh.search(words, 200)}
            return sorted({c.split(":")[0] for c, _ in self.b_keyword.search(query, 200)})
        finally:
            fresh.close()


@pytest.fixture
def pair(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    clock = Clock()
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"note{i:02d}.txt").write_text(f"{PROSE[i % len(PROSE)]} (note {i})\n")
    a = KnowledgeBase(VectorStore.embedded(tmp_path / "chroma"), embedder, tmp_path / "keyword-a")
    b = KnowledgeBase(VectorStore.embedded(tmp_path / "chroma"), embedder, tmp_path / "keyword-b")
    a.create_collection(NAME)
    a_stored, _ = a._collection(NAME)
    b_stored, b_keyword = b._collection(NAME)
    a_stored.clock = b_stored.clock = clock
    assert a.ingest([folder], NAME).count(INDEXED) == FILES
    read = rows_read(monkeypatch, b_stored._files)
    pair = Pair(a, b, a_stored, b_stored, b_keyword, clock, folder, tmp_path, read)
    pair.b_follows("lighthouse")  # B's first sync: its index is new, so the whole manifest is read
    assert sum(read) > FILES
    yield pair
    b.close()
    a.close()


def test_b_reads_only_the_rows_a_changed(pair: Pair):
    pump = pair.folder / "pump.txt"
    pump.write_text("The bilge pump of the ferry Aurelia needs oil every ninety running hours.\n")
    assert pair.a.ingest([pump], NAME).count(INDEXED) == 1
    assert pair.b_follows("bilge pump oil") == [document_key(pump)]
    assert sum(pair.read) <= FEW, pair.read

    pump.write_text("The bilge pump of the ferry Aurelia needs grease every ninety running hours.\n")
    assert pair.a.ingest([pump], NAME).count(INDEXED) == 1
    assert pair.b_follows("grease") == [document_key(pump)]
    assert pair.b_follows("oil") == []  # the words the file no longer holds are gone
    assert sum(pair.read) <= FEW, pair.read

    assert [o.status for o in pair.a.remove([pump], NAME)] == ["removed"]
    assert pair.b_follows("bilge pump grease") == []
    assert sum(pair.read) <= FEW, pair.read
    # The removed file's row is a tombstone, which no reader of files sees.
    assert len(pair.b.status(NAME).files) == FILES and pair.a_stored.file(document_key(pump)) is None
    assert pair.b_stored.changed_since(0).files[document_key(pump)][0] == REMOVED

    pump.write_text("The bilge pump of the ferry Aurelia needs oil every ninety running hours.\n")
    assert pair.a.ingest([pump], NAME).count(INDEXED) == 1  # back again, over its tombstone
    assert pair.b_follows("bilge pump oil") == [document_key(pump)]
    assert sum(pair.read) <= FEW, pair.read


def test_a_crash_midway_leaves_both_indexes_as_a_full_sync_would(pair: Pair):
    """A killed after it marked a file searchable by its words: B drops the file's old words
    (the store no longer holds it indexed), A keeps the new ones searchable, and A's next ingest
    finishes it; each re-sync reads a few rows."""
    note = pair.folder / "note03.txt"
    key, path_text = document_key(note), path_to_text(note)
    old = pair.a_stored.file(key)
    assert old is not None and key in pair.b_keyword.documents()
    note.write_text("The harbour crane was greased on Monday by the night shift.\n")
    # What a run killed after its first pass leaves: the file's row says words, its chunks are
    # gone from the store, and A's keyword index holds its new words.
    pair.a_stored.put_file(FileRecord(key, note, WORDS, "new", path_text=path_text))
    pair.a_stored.delete_chunks(key, old.chunks)
    _, a_keyword = pair.a._collection(NAME)
    a_keyword.begin(key)
    a_keyword.append(key, [chunk_row(key, path_text, "new", Chunk(note.read_text(), 0, 60, None, None))])
    a_keyword.words(key, "new")
    pair.a_stored.bump_generation()

    assert pair.b_follows("harbour crane greased") == []  # A's words are A's alone until the file is indexed
    assert key not in pair.b_keyword.documents() and key not in pair.b_keyword.words_only()
    assert sum(pair.read) <= FEW, pair.read

    # A, started again, searches: its re-sync keeps the words it read searchable.
    pair.clock.advance()
    hits = pair.a.search("harbour crane greased", NAME, limit=3, mode=SearchMode(vector=False))
    assert a_keyword.words_only() == {key: "new"} and hits[0].path == note

    assert pair.a.ingest([pair.folder / "note00.txt"], NAME).count(INDEXED) == 1  # finishes what the killed run began
    assert pair.b_follows("harbour crane greased") == [key]
    assert sum(pair.read) <= FEW, pair.read


def test_a_whole_read_where_the_changed_rows_cannot_say_everything(pair: Pair):
    """B reads every row again when its last sync is older than a tombstone lives, and when the
    generation was moved by a version that stamps no rows (a row it removed leaves no tombstone)."""
    first, second = pair.folder / "note01.txt", pair.folder / "note02.txt"
    assert [o.status for o in pair.a.remove([first], NAME)] == ["removed"]
    pair.clock.advance(TOMBSTONE_LIFE + HOUR)
    assert [o.status for o in pair.a.remove([second], NAME)] == ["removed"]  # sweeps the first's tombstone
    assert document_key(first) not in pair.a_stored.changed_since(0).files
    pair.b_follows("lighthouse")
    assert document_key(first) not in pair.b_keyword.documents()
    assert sum(pair.read) > FILES - 2  # every row

    third = pair.folder / "note04.txt"
    pair.a_stored._files.delete(ids=[document_key(third)])  # as a version before stamps removed a file
    pair.a_stored._files.upsert(ids=["__generation__"], embeddings=[[0.0]],
                                metadatas=[{"status": "generation", "value": "unstamped"}])
    pair.b_follows("lighthouse")
    assert document_key(third) not in pair.b_keyword.documents()
    assert sum(pair.read) > FILES - 3

    # An older version removes a file and moves the generation, then this version moves it again before
    # B looks: the generation's row is stamped again, but what the older version did is in no stamp.
    fifth = pair.folder / "note05.txt"
    pair.a_stored._files.delete(ids=[document_key(fifth)])
    pair.a_stored._files.upsert(ids=["__generation__"], embeddings=[[0.0]],
                                metadatas=[{"status": "generation", "value": "unstamped again"}])
    pair.clock.advance()
    valve = pair.folder / "valve.txt"
    valve.write_text("The relief valve of the boiler opens at twelve bar.\n")
    assert pair.a.ingest([valve], NAME).count(INDEXED) == 1
    assert pair.b_follows("relief valve") == [document_key(valve)]
    assert document_key(fifth) not in pair.b_keyword.documents()
    assert sum(pair.read) > FILES - 4  # every row

    pump = pair.folder / "pump.txt"
    pump.write_text("The bilge pump of the ferry Aurelia needs oil every ninety running hours.\n")
    assert pair.a.ingest([pump], NAME).count(INDEXED) == 1
    pair.clock.advance()  # past the margin after the whole read
    assert pair.b_follows("bilge pump oil") == [document_key(pump)]
    pump.write_text("The bilge pump of the ferry Aurelia needs grease every ninety running hours.\n")
    assert pair.a.ingest([pump], NAME).count(INDEXED) == 1
    assert pair.b_follows("bilge pump grease") == [document_key(pump)]
    assert sum(pair.read) <= FEW, pair.read  # a few rows again


def test_writers_whose_clocks_are_wrong_stamp_by_the_server_s(embedder, tmp_path: Path):
    """Three processes on one Chroma server: A's machine clock is ten minutes slow. Stamped by its own
    clock, A's rows fell before B's margin and B never found A's file; stamped by the server's time
    (its heartbeat), they are read like everyone's."""
    from test_team import ChromaServer

    server = ChromaServer(tmp_path / "server")
    server.start()
    opened: list[KnowledgeBase] = []
    try:
        def process(name: str, slow: float = 0.0) -> KnowledgeBase:
            store = VectorStore.server("localhost", server.port)
            store.local_clock = lambda: time.time() - slow
            opened.append(KnowledgeBase(store, embedder, tmp_path / f"keyword-{name}"))
            return opened[-1]

        a, b, c = process("a", slow=600.0), process("b"), process("c")
        c.create_collection(NAME)
        first = tmp_path / "first.txt"
        first.write_text("The lighthouse keeper logged every ship that passed.\n")
        assert c.ingest([first], NAME).count(INDEXED) == 1
        assert b.search("lighthouse keeper", NAME, mode=SearchMode(vector=False))  # B's first sync: every row
        slow, on_time = tmp_path / "slow.txt", tmp_path / "on-time.txt"
        slow.write_text("The zeppelin burned kerosene over the harbour.\n")
        on_time.write_text("A quokka smiled at the ferry's passengers.\n")
        assert a.ingest([slow], NAME).count(INDEXED) == 1
        assert c.ingest([on_time], NAME).count(INDEXED) == 1
        a_stored, _ = a._collection(NAME)
        assert abs(a_stored.clock() - time.time()) < 5  # the server's time, not A's machine's
        for words, path in (("zeppelin kerosene", slow), ("quokka ferry", on_time)):
            found = b.search(words, NAME, mode=SearchMode(vector=False))
            assert found and found[0].path == path, words
    finally:
        for kb in opened:
            kb.close()
        server.stop()
