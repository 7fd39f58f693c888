"""Keyword search: BM25 over the same chunks as the vectors, in SQLite's FTS5.

The index is a local, derived copy of the store's chunks: it is kept in step as files are
indexed and removed, and re-synced from the store whenever the store's generation moves
(another process, or another client of a shared server, changed the collection). Text is
split into terms here, not by SQLite: Latin words stemmed (Snowball), and runs of Chinese,
Japanese or Korean characters as overlapping bigrams, since those scripts put no spaces
between words.

A search scores only a bounded number of rows, whatever the collection's size: FTS5 scores
every row a query matches before it can sort them, and at a million chunks a few common
terms match hundreds of thousands. So candidates come from the query's rarest terms (those
whose rows together stay within ``_SCORED_ROWS``), or, when every term is common, from the
rows holding all of them; the rows holding every common term join them when those are few
enough. The candidates are then scored with the whole query, with FTS5's own formula and
statistics. Common terms weigh least in BM25: a row holding no rare term and not every
common one seldom belongs in the top.

A document being indexed is searchable here first: its chunks are written with their text
as soon as it is read (``begin``, ``append``, ``words``), while their vectors are still being
made; ``finish`` lets the text go once the store holds it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
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
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have", "he", "her",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our",
    "she", "so", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you",
    "your", "do", "does", "did", "can", "could", "should", "about", "than", "been", "being", "also", "any",
    "all", "each", "more", "most", "other", "some", "such", "only", "own", "same", "too", "very", "just",
    "over", "under", "again", "further", "once", "here", "both", "few", "nor", "off", "out", "up", "down",
))


_SCHEMA_VERSION = "3"
_SCORED_ROWS = 20_000  # rows a query's candidate terms may match together (about 10 ms of FTS5 ranking)
_RESCORED = 200  # candidates scored with the whole query at a time, best on their rare terms first
_MOST_RESCORED = 1000  # past this many without a sure answer, FTS5 ranks every match
_K1, _B = 1.2, 0.75  # FTS5's bm25() defaults
_SYNC_BATCH = 500  # documents re-synced per transaction


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
        self._frequency: dict[str, int] = {}  # rows holding a term (counted up to _SCORED_ROWS + 1)
        self._exact: dict[str, int] = {}  # rows holding a common term, all counted
        # PRAGMA data_version when those were counted (it changes when another connection writes);
        # None once this one wrote: counted again at the next search.
        self._counted_at: int | None = None
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
        # Every search asks which documents are searchable by words alone: a few, of thousands.
        self._db.execute("CREATE INDEX IF NOT EXISTS docs_words_only ON docs(words_only)")

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
            self._counted_at = None

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
        have = self.documents()
        # (document, its hash, or None to forget it): those read by an ingest that stopped (or
        # since finished elsewhere), those gone from the store, those new or changed there.
        changes: list[tuple[str, str | None]] = [
            (doc, None) for doc, content_hash in self.words_only().items() if unfinished.get(doc) != content_hash]
        changes += [(doc, None) for doc in have.keys() - indexed.keys()]
        changes += [(doc, content_hash) for doc, content_hash in indexed.items() if have.get(doc) != content_hash]
        for lo in range(0, len(changes), _SYNC_BATCH):  # a transaction each costs more than the rows in it
            part = [(doc, content_hash, fetch(doc) if content_hash is not None else ())
                    for doc, content_hash in changes[lo : lo + _SYNC_BATCH]]
            with self._transaction():
                for doc, content_hash, chunks in part:
                    self._delete(doc)
                    if content_hash is not None:
                        self._insert(doc, chunks)
                        self._db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, 0)", (doc, content_hash))
        changed = len(changes)
        self.set_generation(generation)
        if changed:
            log.info("keyword index %s: %d documents re-synced", self.path.name, changed)
        return changed

    def _totals(self) -> tuple[int, int]:
        """Rows and terms the index holds, from FTS5's own statistics (no count over every row)."""
        row = self._db.execute("SELECT block FROM fts_data WHERE id = 1").fetchone()
        if not row or not row[0]:
            return 0, 0
        rows, used = _varint(row[0])
        return rows, _varint(row[0][used:])[0]

    def _frequencies(self, words: list[str]) -> dict[str, int]:
        """Rows holding each term, counted no further than ``_SCORED_ROWS + 1``: past that a
        term is common, however common. Remembered until the index changes."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if self._counted_at != version:
            self._frequency, self._exact, self._counted_at = {}, {}, version
        for word in words:
            if word not in self._frequency:
                (self._frequency[word],) = self._db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM fts WHERE fts MATCH ? LIMIT ?)", (_quote(word), _SCORED_ROWS + 1)
                ).fetchone()
        return {word: self._frequency[word] for word in words}

    def _rare(self, words: list[str]) -> list[str]:
        """The query's rarest terms, as many as match at most ``_SCORED_ROWS`` rows together."""
        frequency = self._frequencies(words)
        rare: list[str] = []
        matched = 0
        for word in sorted(words, key=frequency.__getitem__):
            matched += frequency[word]
            if matched > _SCORED_ROWS:
                break
            rare.append(word)
        return rare

    def search(self, query: str, limit: int, docs: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` best first; higher scores are better (BM25, sign flipped)."""
        if docs is not None and not docs:
            return []
        words = list(dict.fromkeys(terms(query, keep_stopwords=False)))
        if not words:
            return []
        restrict, within = "", []
        if docs is not None:  # one parameter, however many documents (SQLite binds at most 32,766)
            restrict = " AND fts.rowid IN (SELECT rowid FROM rows WHERE doc IN (SELECT value FROM json_each(?)))"
            within = [json.dumps(list(docs))]
        with self._lock:
            try:
                ranked = self._ranked(words, restrict, within, limit * 2)
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

    def _ranked(self, words: list[str], restrict: str, within: list[str], wanted: int) -> list[tuple[int, float]]:
        """The ``wanted`` best rows for ``words``, exactly as FTS5's BM25 ranks them.

        Where the query's rarest terms match few rows, only those rows are scored, best on the
        rare terms first: a row's score is its rare terms' part plus at most ``bound`` (each
        common term's most), so once ``wanted`` rows score more than any row not scored could
        reach, no other row can enter. Otherwise (not sure after ``_MOST_RESCORED`` rows), and
        for a query of common terms alone, FTS5 ranks every match."""
        ranked_sql = f"SELECT rowid, -bm25(fts) FROM fts WHERE fts MATCH ?{restrict} ORDER BY bm25(fts)"
        rare = self._rare(words)
        if rare and len(rare) < len(words):
            idf = self._idf(words)
            bound = sum(idf[w] * (_K1 + 1) for w in words if w not in rare)
            # Where rows without a rare term may well win, FTS5 ranks them all at once.
            hopeful = bound < sum(idf[w] * (_K1 + 1) for w in rare)
            pool = self._db.execute(ranked_sql, [" OR ".join(_quote(w) for w in rare), *within]).fetchall() if hopeful else []
            best: list[tuple[int, float]] = []
            for start in range(0, min(len(pool), _MOST_RESCORED), _RESCORED):
                best = sorted(best + self._scored({r for r, _ in pool[start:start + _RESCORED]}, words),
                              key=lambda hit: (-hit[1], hit[0]))[:wanted]
                end = start + _RESCORED
                reach = bound + (pool[end][1] if end < len(pool) else 0.0)  # the most a row not scored can score
                if len(best) == wanted and best[-1][1] > reach:
                    return best
                last = min(len(pool), _MOST_RESCORED)
                if last < len(pool) and (len(best) < wanted or best[-1][1] <= bound + pool[last][1]):
                    break  # not even the rows the budget ends with would be ruled out: FTS5 ranks them all
        return self._db.execute(ranked_sql + " LIMIT ?", [" OR ".join(_quote(w) for w in words), *within, wanted]).fetchall()

    def _idf(self, words: list[str]) -> dict[str, float]:
        """Each term's inverse document frequency, as FTS5's bm25() has it."""
        rows = self._totals()[0]
        for word in words:
            if word not in self._exact:
                known = self._frequency.get(word, _SCORED_ROWS + 1)
                if known > _SCORED_ROWS:  # counted only so far: count it all, once
                    found = self._db.execute("SELECT doc FROM temp.vocab WHERE term = ?", (word,)).fetchone()
                    known = found[0] if found else 0
                self._exact[word] = known
        return {w: max(math.log((rows - self._exact[w] + 0.5) / (self._exact[w] + 0.5)), 1e-6) for w in words}

    def _scored(self, rowids: set[int], words: list[str]) -> list[tuple[int, float]]:
        """``rowids`` with their BM25 for ``words``, best first: FTS5's own formula and statistics,
        computed here from the rows' terms (asking FTS5 to score given rows walks every posting list)."""
        if not rowids:
            return []
        rows, tokens = self._totals()
        average = tokens / max(1, rows)
        idf = self._idf(words)
        texts = self._db.execute(f"SELECT rowid, terms FROM fts WHERE rowid IN ({','.join('?' * len(rowids))})", list(rowids))
        scored = []
        for rowid, text in texts:
            held = str(text or "").split()
            counts, norm = Counter(held), _K1 * (1 - _B + _B * len(held) / average)
            scored.append((rowid, sum(idf[w] * counts[w] * (_K1 + 1) / (counts[w] + norm) for w in words if counts[w])))
        return sorted(scored, key=lambda hit: (-hit[1], hit[0]))


def _varint(data: bytes) -> tuple[int, int]:
    """The first SQLite varint in ``data`` (FTS5 writes its statistics so), and its length in bytes."""
    value = 0
    for i, byte in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | byte, 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + 1
    return value, len(data)
