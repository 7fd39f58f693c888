"""The chunks' search terms in a Tantivy index: BM25's best few without scoring every match.

A query's common terms match a large part of a big collection (at a million chunks, hundreds
of thousands of rows); SQLite's FTS5 scores every one of them before it can sort. Tantivy
finds the top k with block-max WAND, skipping the blocks of a posting list that cannot reach
the k-th score, so a search costs milliseconds at any size. Terms arrive already split (see
``keyword_index.terms``) and are indexed as they are, with their frequencies but no positions.

Tantivy lets one writer at a time hold an index, across processes. A writer is taken for a
change and kept while changes follow one another (its merges run meanwhile); a second later
it is let go, so that another process (a command-line ingest beside the app) can write. A
process that finds the index held waits for it, as SQLite's ``timeout`` waits for its lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

log = logging.getLogger(__name__)

_WRITER_HEAP = 32_000_000  # bytes buffered before the writer flushes a segment (one thread)
_IDLE_RELEASE = 1.0  # seconds a writer is kept after a commit, for the next change
_LOCK_WAIT = 30.0  # seconds to wait for another process's writer
_LONGEST_TERM = 200  # characters; longer "words" (base64, hashes) are no search term


class IndexBusy(Exception):
    """Another process held the index's writer for longer than the caller would wait."""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("terms", stored=False, tokenizer_name="terms", index_option="freq")
    builder.add_text_field("doc", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("chunk", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


class TermIndex:
    """Chunks' terms by document, searched by BM25. Callers hold ``lock`` around every call."""

    def __init__(self, folder: Path, lock: threading.RLock) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=str(folder))
        analyzer = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).filter(
            tantivy.Filter.remove_long(_LONGEST_TERM)).build()
        self._index.register_tokenizer("terms", analyzer)
        self._writer: tantivy.IndexWriter | None = None
        self._pending = False  # changes made since the last commit
        self._used = 0.0  # when the writer last changed something
        self._timer: threading.Timer | None = None
        self._lock = lock  # the release timer takes it too

    # -- changes (published by ``commit``) ----------------------------------------------------

    def add(self, doc: str, chunks: Iterable[tuple[str, str]]) -> None:
        """Add a document's chunks as ``(chunk_id, terms joined by spaces)``."""
        writer = self._take()
        for chunk_id, terms in chunks:
            writer.add_document(tantivy.Document(terms=terms, doc=doc, chunk=chunk_id))
        self._pending = True

    def delete(self, docs: Iterable[str]) -> None:
        """Delete every chunk of these documents."""
        writer = self._take()
        for doc in docs:
            writer.delete_documents_by_term("doc", doc)
        self._pending = True

    def commit(self) -> None:
        """Publish the changes made since the last commit, atomically, on disk."""
        if not self._pending:
            return
        assert self._writer is not None  # a change took it
        self._writer.commit()
        self._pending = False
        self._used = time.monotonic()
        self._index.reload()
        self._release_later()

    def rollback(self) -> None:
        """Forget the changes made since the last commit."""
        if self._writer is not None and self._pending:
            self._writer.rollback()
        self._pending = False

    # -- reading ------------------------------------------------------------------------------

    def documents(self) -> set[str]:
        """Every document with a chunk here (a deleted one may linger until its segment merges)."""
        self._index.reload()
        return {term for term, _ in self._index.searcher().terms_with_prefix("doc", "")}

    def chunks(self) -> int:
        """How many chunks are held."""
        self._index.reload()
        return self._index.searcher().num_docs

    def search(self, words: Sequence[str], limit: int, docs: Sequence[str] | None = None) -> list[tuple[str, str, float]]:
        """The ``limit`` best chunks for ``words`` by BM25, as ``(doc, chunk_id, score)``, best first;
        only from ``docs`` when given."""
        self._index.reload()  # another process may have committed (a few microseconds when none did)
        searcher = self._index.searcher()
        # A term in more than half the chunks tells them apart no more than it sets them apart from
        # the rest (BM25's own idf is zero or less there; SQLite's FTS5 weighed it so): it is left
        # out, unless no term that matches anything is left.
        telling = [w for w in words if 0 < searcher.doc_freq("terms", w) * 2 <= searcher.num_docs] or list(words)
        terms = [tantivy.Query.term_query(self._schema, "terms", word) for word in telling]
        query = terms[0] if len(terms) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, t) for t in terms])
        if docs is not None:  # a filter: it adds nothing to a score
            within = tantivy.Query.const_score_query(tantivy.Query.term_set_query(self._schema, "doc", list(docs)), 0.0)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, within)])
        found = []
        for score, address in searcher.search(query, limit, count=False).hits:
            stored = searcher.doc(address)
            found.append((str(stored["doc"][0]), str(stored["chunk"][0]), float(score)))
        return found

    def close(self) -> None:
        """Let the writer go, discarding changes not committed."""
        self.rollback()
        if self._timer is not None:
            self._timer.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.wait_merging_threads()

    # -- the writer -----------------------------------------------------------------------------

    def reserve(self, wait: float) -> bool:
        """Take the writer now, waiting at most ``wait`` seconds for another process to let it go;
        False if it did not (the changes that were to follow can wait for a later turn)."""
        try:
            self._take(wait)
        except IndexBusy:
            return False
        return True

    def _take(self, wait: float = _LOCK_WAIT) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._open_writer(wait)
        self._used = time.monotonic()
        return self._writer

    def _open_writer(self, wait: float) -> tantivy.IndexWriter:
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._index.writer(_WRITER_HEAP, 1)
            except ValueError as exc:  # LockBusy: another process (or a writer still merging) holds it
                if "LockBusy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise IndexBusy(f"the keyword index {self._folder} is being written by another process") from exc
                time.sleep(0.05)

    def _release_later(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(_IDLE_RELEASE, self._release_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_if_idle(self) -> None:
        with self._lock:
            if self._pending or time.monotonic() - self._used < _IDLE_RELEASE * 0.9:
                return  # a change is under way: its commit sets the timer again
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.wait_merging_threads()  # finishes its merges (outside the lock), then lets the index go
