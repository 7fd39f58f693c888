"""Keyword search: BM25 over the same chunks as the vectors.

The index is a local, derived copy of the store's chunks: it is kept in step as files are
indexed and removed, and re-synced from the store whenever the store's generation moves
(another process, or another client of a shared server, changed the collection). Text is
split into terms here: Latin words stemmed (Snowball), and runs of Chinese, Japanese or
Korean characters as overlapping bigrams, since those scripts put no spaces between words.

Two files hold it, in the collection's own folder. The terms are in a Tantivy index
(``term_index``), which ranks. An SQLite file says which documents are searchable and at
which content hash, holds a document's text while its vectors are made, and remembers the
store generation the index follows, with the time (by the store's clock) up to which it read
the store's manifest: the next re-sync reads only the manifest rows written since then. A
document is searchable only while the SQLite file names it, and it is named only after its
terms are committed: a change first takes the document off the list, then changes its terms
and commits them, then names it again. So a search never sees half a document; terms left
by a process that died midway are never shown, and are swept at the next ingest.

A document being indexed is searchable here first: its chunks are written with their text
as soon as it is read (``begin``, ``append``, ``words``), while their vectors are still being
made; ``finish`` lets the text go once the store holds it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rag.storage.term_index import TermIndex

log = logging.getLogger(__name__)

_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # han
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"  # hangul
)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")

# Common English words carry no signal in a query, and match most chunks.
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have", "he", "her",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our",
    "she", "so", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you",
    "your", "do", "does", "did", "can", "could", "should", "about", "than", "been", "being", "also", "any",
    "all", "each", "more", "most", "other", "some", "such", "only", "own", "same", "too", "very", "just",
    "over", "under", "again", "further", "once", "here", "both", "few", "nor", "off", "out", "up", "down",
))


_SCHEMA_VERSION = "4"
_SYNC_BATCH = 500  # documents re-synced per commit
_SYNC_WAIT = 1.0  # seconds a search's re-sync waits for another process's writer before it lets the sync be


_STEMMERS = threading.local()  # snowballstemmer's stemmers keep state between calls: one per thread


def _stemmer():  # snowballstemmer has no types
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _STEMMERS.english = snowballstemmer.stemmer("english")
    return stemmer


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word) if word.isascii() and word.isalpha() else word


def terms(text: str, keep_stopwords: bool = True) -> list[str]:
    """Split text into search terms: stemmed lower-case words, and CJK bigrams (a lone character stays)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _CJK_RUN.match(token):
            if len(token) == 1:
                out.append(token)
            else:
                out.extend(token[i : i + 2] for i in range(len(token) - 1))
        elif keep_stopwords or token not in _STOPWORDS:
            out.append(_stem(token))
    return out


class KeywordIndex:
    """A BM25 index of one collection's chunks, in one folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):  # the layout before: one SQLite file beside the folder
            folder.with_name(f"{folder.name}.sqlite{suffix}").unlink(missing_ok=True)
        self.folder = folder
        self._lock = threading.RLock()
        self._db = sqlite3.connect(folder / "index.sqlite", check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is None or version[0] != _SCHEMA_VERSION:  # start again: the next sync refills it from the store
            self._db.executescript("DROP TABLE IF EXISTS held; DROP TABLE IF EXISTS docs; DELETE FROM meta;")
            shutil.rmtree(folder / "terms", ignore_errors=True)
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS docs(doc TEXT PRIMARY KEY, hash TEXT NOT NULL, words_only INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS docs_words_only ON docs(words_only);
            CREATE TABLE IF NOT EXISTS held(
                rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL, doc TEXT NOT NULL, text TEXT NOT NULL, meta TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS held_doc ON held(doc);
            CREATE INDEX IF NOT EXISTS held_chunk ON held(chunk_id);
            """
        )
        self._terms = TermIndex(folder / "terms", self._lock)

    def close(self) -> None:
        """Close the files (changes not committed are dropped)."""
        with self._lock:
            self._terms.close()
            self._db.close()

    @property
    def generation(self) -> str:
        """The store generation this index was last synced to."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return row[0] if row else ""

    @property
    def synced_at(self) -> float | None:
        """The time (the store's clock, taken before it read the manifest) of the last re-sync from
        the store's manifest: every row written before it is reflected here. None before the first."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='synced_at'").fetchone()
        return float(row[0]) if row else None

    def set_generation(self, generation: str, synced_at: float | None = None) -> None:
        """Record the store generation the index now matches, and with ``synced_at`` the time of
        the manifest read that brought it there. Without it the time stays as it was: an ingest
        here that records the generation after its own writes has not read the others' meanwhile."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation,))
            if synced_at is not None:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('synced_at', ?)", (repr(float(synced_at)),))

    def documents(self) -> dict[str, str]:
        """Document key -> content hash, for every document in the index whose vectors are done."""
        with self._lock:
            return dict(self._db.execute("SELECT doc, hash FROM docs WHERE NOT words_only").fetchall())

    def words_only(self) -> dict[str, str]:
        """Document key -> content hash, for the documents searchable here before their vectors are done."""
        with self._lock:
            return dict(self._db.execute("SELECT doc, hash FROM docs WHERE words_only = 1").fetchall())  # its index

    def chunks(self) -> int:
        """How many chunks' terms the index holds, searchable or not."""
        with self._lock:
            return self._terms.chunks()

    def begin(self, doc: str) -> None:
        """Start writing a document again: its old rows go, and it is not searchable until ``words`` or ``finish``."""
        with self._lock:
            self._hide([doc])
            self._terms.delete([doc])

    def append(self, doc: str, chunks: Iterable[tuple[str, str, dict[str, object]]]) -> None:
        """Add rows (chunk id, text, the store's metadata) to a document being written; the
        text is kept until ``finish``, so that the document can be searched before then."""
        rows = [(chunk_id, text, json.dumps(meta, ensure_ascii=False)) for chunk_id, text, meta in chunks]
        with self._transaction():
            self._db.executemany("INSERT INTO held(chunk_id, doc, text, meta) VALUES (?, ?, ?, ?)",
                                 [(chunk_id, doc, text, meta) for chunk_id, text, meta in rows])
            self._terms.add(doc, [(chunk_id, " ".join(terms(text))) for chunk_id, text, _ in rows])

    def drop_unfinished(self) -> None:
        """Forget rows of documents whose writing never finished (an ingest killed midway).
        Only the ingest calls this, before it starts: a search must not, while one is writing."""
        with self._transaction():
            self._db.execute("DELETE FROM held WHERE doc NOT IN (SELECT doc FROM docs)")
            named = {doc for (doc,) in self._db.execute("SELECT doc FROM docs")}
        with self._lock:
            self._terms.delete(self._terms.documents() - named)
            self._terms.commit()

    def words(self, doc: str, content_hash: str) -> None:
        """Make a document written with ``begin``/``append`` searchable here, before its vectors are done."""
        with self._lock:
            self._terms.commit()
            self._show([(doc, content_hash)], words_only=True)

    def held(self, doc: str, batch: int = 256) -> Iterator[list[tuple[str, str, dict[str, object]]]]:
        """A document's rows as written by ``append`` (id, text, metadata), in order, in batches."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT rowid, chunk_id, text, meta FROM held WHERE doc = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                    (doc, last, batch),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(chunk_id, text, json.loads(meta)) for _, chunk_id, text, meta in rows]

    def held_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, object]]]:
        """Chunk id -> (text, metadata), for those of ``ids`` whose text is still held."""
        if not ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT chunk_id, text, meta FROM held WHERE chunk_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(ids)),),
            ).fetchall()
        return {chunk_id: (text, json.loads(meta)) for chunk_id, text, meta in rows}

    def finish(self, doc: str, content_hash: str) -> None:
        """The document's vectors are in the store: it is indexed, and its text need not be held."""
        with self._lock:
            self._terms.commit()
            self._show([(doc, content_hash)], words_only=False)

    def remove(self, doc: str) -> None:
        """Forget one document."""
        with self._lock:
            self._hide([doc])
            self._terms.delete([doc])
            self._terms.commit()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _hide(self, docs: list[str]) -> None:
        """Take documents off the searchable list, and let their held text go."""
        with self._transaction():
            for doc in docs:
                self._db.execute("DELETE FROM docs WHERE doc = ?", (doc,))
                self._db.execute("DELETE FROM held WHERE doc = ?", (doc,))

    def _show(self, docs: list[tuple[str, str]], words_only: bool) -> None:
        """Put documents (key, content hash) on the searchable list: their terms are committed."""
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)",
                                 [(doc, content_hash, int(words_only)) for doc, content_hash in docs])
            if not words_only:
                self._db.executemany("DELETE FROM held WHERE doc = ?", [(doc,) for doc, _ in docs])

    def sync(
        self,
        indexed: dict[str, str],
        fetch: Callable[[str], Sequence[tuple[str, str]]],
        generation: str,
        unfinished: dict[str, str] | None = None,
        synced_at: float | None = None,
    ) -> int:
        """Bring the index in step with the store's ``indexed`` documents (key -> hash): every one.

        ``fetch(key)`` returns a document's ``(chunk_id, text)`` pairs from the store.
        ``unfinished`` names the documents being indexed (key -> hash): those this index holds
        the words of stay searchable. ``synced_at`` is the time of the manifest read that gave
        ``indexed`` (see ``synced_at``). Returns how many documents changed.
        """
        have = self.documents()
        changes = self._stopped(unfinished or {})
        changes += [(doc, None) for doc in have.keys() - indexed.keys()]
        changes += [(doc, content_hash) for doc, content_hash in indexed.items() if have.get(doc) != content_hash]
        return self._apply(changes, fetch, generation, synced_at)

    def sync_changed(
        self,
        changed: dict[str, str | None],
        fetch: Callable[[str], Sequence[tuple[str, str]]],
        generation: str,
        unfinished: dict[str, str],
        synced_at: float,
    ) -> int:
        """Bring the index in step with the store, given only the manifest rows written since
        the last sync (``changed``: key -> hash where the store holds the document indexed, None
        where it does not: being indexed, failed or removed); what ``sync`` of every indexed
        document would do, where the rest are as this index last saw them. ``unfinished`` must
        name every document this index holds the words of that is still being indexed."""
        have = self.documents()
        changes = self._stopped(unfinished)
        changes += [(doc, None) for doc, content_hash in changed.items() if content_hash is None and doc in have]
        changes += [(doc, content_hash) for doc, content_hash in changed.items()
                    if content_hash is not None and have.get(doc) != content_hash]
        return self._apply(changes, fetch, generation, synced_at)

    def _stopped(self, unfinished: dict[str, str]) -> list[tuple[str, str | None]]:
        """Documents read by an ingest that stopped (or since finished elsewhere): to forget."""
        return [(doc, None) for doc, content_hash in self.words_only().items() if unfinished.get(doc) != content_hash]

    def _apply(
        self, changes: list[tuple[str, str | None]], fetch: Callable[[str], Sequence[tuple[str, str]]],
        generation: str, synced_at: float | None,
    ) -> int:
        """Re-index each document (its key, and its hash, or None to forget it), then record the
        generation; returns how many changed (fewer, and nothing recorded, where another process
        is writing the index)."""
        changes = list(dict(changes).items())  # a document named twice: the last word stands
        for lo in range(0, len(changes), _SYNC_BATCH):  # a commit each costs more than the rows in it
            part = [(doc, content_hash, fetch(doc) if content_hash is not None else ())
                    for doc, content_hash in changes[lo : lo + _SYNC_BATCH]]
            with self._lock:
                if not self._terms.reserve(_SYNC_WAIT):  # another process is writing (an ingest beside
                    # this one, on one data folder): search with the index as it is, and sync at a later search
                    log.info("keyword index %s: another process is writing it; synced later", self.folder.name)
                    return lo
                self._hide([doc for doc, _, _ in part])
                self._terms.delete([doc for doc, _, _ in part])
                for doc, _, chunks in part:
                    self._terms.add(doc, [(chunk_id, " ".join(terms(text))) for chunk_id, text in chunks])
                self._terms.commit()
                self._show([(doc, content_hash) for doc, content_hash, _ in part if content_hash is not None], False)
        changed = len(changes)
        self.set_generation(generation, synced_at)
        if changed:
            log.info("keyword index %s: %d documents re-synced", self.folder.name, changed)
        return changed

    def search(self, query: str, limit: int, docs: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` best first; higher scores are better (BM25)."""
        if docs is not None and not docs:
            return []
        words = list(dict.fromkeys(terms(query, keep_stopwords=False)))
        if not words:
            return []
        wanted = limit * 2
        with self._lock:
            while True:
                try:
                    hits = self._terms.search(words, wanted, docs)
                except ValueError as exc:
                    log.warning("keyword search for %r failed: %s", query, exc)
                    return []
                named = {doc for (doc,) in self._db.execute(
                    "SELECT doc FROM docs WHERE doc IN (SELECT value FROM json_each(?))",
                    (json.dumps(list({doc for doc, _, _ in hits})),))}
                found = [(chunk_id, score) for doc, chunk_id, score in hits if doc in named]
                # Hits of documents not (yet) searchable took places: look further, within reason.
                if len(found) >= limit or len(hits) < wanted or wanted >= limit * 32:
                    return found[:limit]
                wanted *= 4


