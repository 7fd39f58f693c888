"""Keyword search: BM25 over the same chunks as the vectors, in SQLite's FTS5.

The index is a local, derived copy of the store's chunks: it is kept in step as files are
indexed and removed, and re-synced from the store whenever the store's generation moves
(another process, or another client of a shared server, changed the collection). Text is
split into terms here, not by SQLite: Latin words stemmed (Snowball), and runs of Chinese,
Japanese or Korean characters as overlapping bigrams, since those scripts put no spaces
between words. Queries leave out terms that occur in a large share of the chunks: they add
almost nothing to BM25 and cost the most to score.

A document being indexed is searchable here first: its chunks are written with their text
as soon as it is read (``begin``, ``append``, ``words``), while their vectors are still being
made; ``finish`` lets the text go once the store holds it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # han
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"  # hangul
)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")

# Common English words carry no signal in a query and make FTS5 walk huge posting lists.
_STOPWORDS = frozenset(
    """a an and are as at be but by for from had has have he her his how i if in into is it its
    me my no not of on or our she so that the their them then there these they this those to
    us was we were what when where which who whom why will with would you your do does did can
    could should about which than been being also any all each more most other some such only
    own same too very just over under again further once here both few nor off out up down""".split()
)


_SCHEMA_VERSION = "3"
_COMMON_SHARE = 0.05  # query terms in more than this share of chunks are left out (if a rarer one remains)
_PRUNE_FROM = 2000  # below this many chunks every search is fast anyway


@functools.cache
def _stemmer():  # noqa: ANN202 - snowballstemmer has no types
    import snowballstemmer

    return snowballstemmer.stemmer("english")


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


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class KeywordIndex:
    """A BM25 index of one collection's chunks, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(terms, tokenize='unicode61 remove_diacritics 0');
            CREATE TABLE IF NOT EXISTS rows(
                rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL, doc TEXT NOT NULL, text TEXT, meta TEXT);
            CREATE INDEX IF NOT EXISTS rows_doc ON rows(doc);
            CREATE TABLE IF NOT EXISTS docs(doc TEXT PRIMARY KEY, hash TEXT NOT NULL, words_only INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, fts, row);
            """
        )
        version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is None or version[0] != _SCHEMA_VERSION:
            # An older layout: start again; the next sync refills the index from the store.
            self._db.executescript(
                """
                DROP TABLE rows; DROP TABLE docs; DELETE FROM fts; DELETE FROM meta;
                CREATE TABLE rows(rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL, doc TEXT NOT NULL, text TEXT, meta TEXT);
                CREATE INDEX rows_doc ON rows(doc);
                CREATE TABLE docs(doc TEXT PRIMARY KEY, hash TEXT NOT NULL, words_only INTEGER NOT NULL DEFAULT 0);
                """
            )
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    @property
    def generation(self) -> str:
        """The store generation this index was last synced to."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return row[0] if row else ""

    def set_generation(self, generation: str) -> None:
        """Record the store generation the index now matches."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation,))

    def documents(self) -> dict[str, str]:
        """Document key -> content hash, for every document in the index whose vectors are done."""
        with self._lock:
            return dict(self._db.execute("SELECT doc, hash FROM docs WHERE NOT words_only").fetchall())

    def words_only(self) -> dict[str, str]:
        """Document key -> content hash, for the documents searchable here before their vectors are done."""
        with self._lock:
            return dict(self._db.execute("SELECT doc, hash FROM docs WHERE words_only").fetchall())

    def replace(self, doc: str, content_hash: str, chunks: Iterable[tuple[str, str]]) -> None:
        """Replace one document's chunks (``(chunk_id, text)`` pairs) in one transaction."""
        with self._transaction():
            self._delete(doc)
            self._insert(doc, chunks)
            self._db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, 0)", (doc, content_hash))

    def begin(self, doc: str) -> None:
        """Start writing a document again: its old rows go, and it is not searchable until ``finish``."""
        with self._transaction():
            self._delete(doc)

    def append(self, doc: str, chunks: Iterable[tuple[str, str, dict[str, object]]]) -> None:
        """Add rows (chunk id, text, the store's metadata) to a document being written; the
        text is kept until ``finish``, so that the document can be searched before then."""
        with self._transaction():
            for chunk_id, text, meta in chunks:
                cursor = self._db.execute(
                    "INSERT INTO rows(chunk_id, doc, text, meta) VALUES (?, ?, ?, ?)",
                    (chunk_id, doc, text, json.dumps(meta, ensure_ascii=False)),
                )
                self._db.execute("INSERT INTO fts(rowid, terms) VALUES (?, ?)", (cursor.lastrowid, " ".join(terms(text))))

    def drop_unfinished(self) -> None:
        """Forget rows of documents whose writing never finished (an ingest killed midway).
        Only the ingest calls this, before it starts: a search must not, while one is writing."""
        with self._transaction():
            self._db.execute(
                "DELETE FROM fts WHERE rowid IN (SELECT rowid FROM rows WHERE doc NOT IN (SELECT doc FROM docs))"
            )
            self._db.execute("DELETE FROM rows WHERE doc NOT IN (SELECT doc FROM docs)")

    def words(self, doc: str, content_hash: str) -> None:
        """Make a document written with ``begin``/``append`` searchable here, before its vectors are done."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, 1)", (doc, content_hash))

    def held(self, doc: str, batch: int = 256) -> Iterator[list[tuple[str, str, dict[str, object]]]]:
        """A document's rows as written by ``append`` (id, text, metadata), in order, in batches."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT rowid, chunk_id, text, meta FROM rows WHERE doc = ? AND rowid > ? AND text IS NOT NULL "
                    "ORDER BY rowid LIMIT ?", (doc, last, batch),
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
                f"SELECT chunk_id, text, meta FROM rows WHERE text IS NOT NULL AND chunk_id IN ({','.join('?' * len(ids))})",
                list(ids),
            ).fetchall()
        return {chunk_id: (text, json.loads(meta)) for chunk_id, text, meta in rows}

    def finish(self, doc: str, content_hash: str) -> None:
        """The document's vectors are in the store: it is indexed, and its text need not be held."""
        with self._transaction():
            self._db.execute("UPDATE rows SET text = NULL, meta = NULL WHERE doc = ?", (doc,))
            self._db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, 0)", (doc, content_hash))

    def remove(self, doc: str) -> None:
        """Forget one document."""
        with self._transaction():
            self._delete(doc)

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

    def _insert(self, doc: str, chunks: Iterable[tuple[str, str]]) -> None:
        for chunk_id, text in chunks:
            cursor = self._db.execute("INSERT INTO rows(chunk_id, doc) VALUES (?, ?)", (chunk_id, doc))
            self._db.execute("INSERT INTO fts(rowid, terms) VALUES (?, ?)", (cursor.lastrowid, " ".join(terms(text))))

    def _delete(self, doc: str) -> None:
        self._db.execute("DELETE FROM fts WHERE rowid IN (SELECT rowid FROM rows WHERE doc = ?)", (doc,))
        self._db.execute("DELETE FROM rows WHERE doc = ?", (doc,))
        self._db.execute("DELETE FROM docs WHERE doc = ?", (doc,))

    def sync(
        self,
        indexed: dict[str, str],
        fetch: Callable[[str], Sequence[tuple[str, str]]],
        generation: str,
        unfinished: dict[str, str] | None = None,
    ) -> int:
        """Bring the index in step with the store's ``indexed`` documents (key -> hash).

        ``fetch(key)`` returns a document's ``(chunk_id, text)`` pairs from the store.
        ``unfinished`` names the documents being indexed (key -> hash): those this index holds
        the words of stay searchable. Returns how many documents changed.
        """
        unfinished = unfinished or {}
        stale = [doc for doc, content_hash in self.words_only().items() if unfinished.get(doc) != content_hash]
        have = self.documents()
        changed = 0
        for doc in stale:  # read by an ingest that stopped, or since finished elsewhere
            self.remove(doc)
            changed += 1
        for doc in have.keys() - indexed.keys():
            self.remove(doc)
            changed += 1
        for doc, content_hash in indexed.items():
            if have.get(doc) != content_hash:
                self.replace(doc, content_hash, fetch(doc))
                changed += 1
        self.set_generation(generation)
        if changed:
            log.info("keyword index %s: %d documents re-synced", self.path.name, changed)
        return changed

    def _query_terms(self, query: str) -> list[str]:
        """The query's distinct terms, without those common enough to only slow the search."""
        wanted = list(dict.fromkeys(terms(query, keep_stopwords=False)))
        if len(wanted) <= 1:
            return wanted
        (total,) = self._db.execute("SELECT count(*) FROM rows").fetchone()
        if total < _PRUNE_FROM:
            return wanted
        frequency = {}
        for term in wanted:
            row = self._db.execute("SELECT doc FROM temp.vocab WHERE term = ?", (term,)).fetchone()
            frequency[term] = row[0] if row else 0
        rare = [t for t in wanted if frequency[t] <= _COMMON_SHARE * total]
        return rare or [min(wanted, key=frequency.__getitem__)]  # all common: the least common one

    def search(self, query: str, limit: int, docs: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` best first; higher scores are better (BM25, sign flipped)."""
        if docs is not None and not docs:
            return []
        with self._lock:
            words = self._query_terms(query)
            if not words:
                return []
            expression = " OR ".join(_quote(w) for w in words)
            params: list[object] = [expression]
            restrict = ""
            if docs is not None:
                restrict = f" AND fts.rowid IN (SELECT rowid FROM rows WHERE doc IN ({','.join('?' * len(docs))}))"
                params.extend(docs)
            try:
                # Rank in FTS5 alone, then look the winners up: joining every match first is slow.
                ranked = self._db.execute(
                    f"SELECT rowid, -bm25(fts) FROM fts WHERE fts MATCH ?{restrict} ORDER BY bm25(fts) LIMIT ?",
                    [*params, limit * 2],
                ).fetchall()
            except sqlite3.OperationalError as exc:
                log.warning("keyword search for %r failed: %s", query, exc)
                return []
            if not ranked:
                return []
            marks = ",".join("?" * len(ranked))
            found = dict(
                self._db.execute(
                    f"SELECT rows.rowid, rows.chunk_id FROM rows JOIN docs ON docs.doc = rows.doc WHERE rows.rowid IN ({marks})",
                    [rowid for rowid, _ in ranked],
                ).fetchall()
            )
        return [(found[rowid], float(score)) for rowid, score in ranked if rowid in found][:limit]
