"""The collections a knowledge base holds open: each one's chunks and manifest, with its keyword index beside it.

Opening a collection costs round trips (its name is listed, its Chroma collections fetched) and
opening a keyword index costs a file's lock, so each is opened once and kept until it changes.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rag.storage.collection import TOMBSTONE_LIFE, StoredCollection
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import INDEXED, PENDING, WORDS
from rag.storage.vectors import CollectionInfo, VectorStore

_NAME_TTL = 5.0
# Seconds a re-sync reads before the time of the last: rows stamped by a clock behind this
# machine's, and rows stamped just before the last re-sync but written just after its read.
_MARGIN = 120.0


class OpenCollections:
    """The collections of one store opened so far, by id, and their names, remembered a few seconds."""

    def __init__(self, store: VectorStore, keyword_dir: Path) -> None:
        self.store = store
        self.keyword_dir = keyword_dir
        self._open: dict[str, tuple[StoredCollection, KeywordIndex]] = {}
        self._names: dict[str, tuple[CollectionInfo, float]] = {}
        self._lock = threading.Lock()

    def find(self, name: str) -> CollectionInfo:
        """The collection called ``name``; names are remembered for a few seconds, since listing
        collections costs a round trip and another client may rename one at any time."""
        known = self._names.get(name)
        if known is not None and time.monotonic() - known[1] < _NAME_TTL:
            return known[0]
        info = self.store.find(name)
        self._names[name] = (info, time.monotonic())
        return info

    def open(self, info: CollectionInfo) -> tuple[StoredCollection, KeywordIndex]:
        """The chunks and manifest of ``info``, with its keyword index, opened at the first call."""
        with self._lock:
            if info.id not in self._open:
                self._open[info.id] = (self.store.open(info), KeywordIndex(self.keyword_dir / info.id))
            collection, keyword = self._open[info.id]
        collection.info = info
        return collection, keyword

    def forget_name(self, name: str | None = None) -> None:
        """Look ``name`` up again at its next use (every name, when None)."""
        if name is None:
            self._names.clear()
        else:
            self._names.pop(name, None)

    def reopen(self, collection_id: str) -> None:
        """Open the collection again at its next use (its Chroma objects changed); its keyword index stays as it is."""
        with self._lock:
            self._open.pop(collection_id, None)

    def forget(self, collection_id: str) -> None:
        """Close a deleted collection's keyword index and delete it: ids follow from names, so a later
        collection of the same name must not find it."""
        with self._lock:
            opened = self._open.pop(collection_id, None)
        if opened:
            opened[1].close()
        shutil.rmtree(self.keyword_dir / collection_id, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):  # the keyword index's layout before it had a folder
            (self.keyword_dir / f"{collection_id}.sqlite{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        """Close every keyword index opened (the store is its owner's to close)."""
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for _, keyword in opened:
            keyword.close()


def sync_keyword(
    stored: StoredCollection, keyword: KeywordIndex, generation: str | None = None,
    unfinished: dict[str, str] | None = None,
) -> None:
    """Bring ``keyword`` in step with ``stored``'s manifest, when another client (or a crash) left it
    behind; ``generation`` and ``unfinished`` are ``stored.state()`` where the caller has just read it.

    Only the manifest rows written since the index last synced are read (their stamps, less
    ``_MARGIN``; removed files leave stamped tombstones): a few rows after another client's ingest,
    whatever the manifest's size. The whole manifest is read where that cannot be exact: at the
    index's first sync (or its first since an upgrade: rows written before carry no stamp), when
    its last was too long ago for every tombstone since to remain, when a version that stamps
    nothing moved the generation since, and when the rows changed fill more than a page. Stamps
    are the store's time (``VectorStore.clock``), so writers on machines whose clocks disagree
    stamp alike."""
    if generation is None or unfinished is None:
        generation, unfinished = stored.state()
    if keyword.generation == generation:
        return
    now = float(stored.clock())  # before the read: a row written after it is in the next one's
    since = keyword.synced_at
    changes = None
    # (A time ahead of now: the clock was set back, and rows written since may carry earlier stamps.)
    if since is not None and now - TOMBSTONE_LIFE + 2 * _MARGIN < since <= now:
        changes = stored.changed_since(since - _MARGIN)
    if changes is None or not changes.complete:
        _sync_whole(stored, keyword, generation, unfinished, now)
        return
    # Re-reading a row already seen is harmless: a document is fetched only when its hash differs.
    changed = {key: content_hash if status == INDEXED else None
               for key, (status, content_hash) in changes.files.items()}
    unfinished = {**unfinished, **{key: content_hash for key, (status, content_hash) in changes.files.items()
                                   if status in (PENDING, WORDS)}}
    # The documents this index holds the words of are looked up by key, so that whether they are
    # still being indexed does not depend on a paged read of unfinished rows (one may move while
    # others finish): a handful at most, those an ingest here left.
    held = keyword.words_only()
    if held:
        unfinished.update({key: record.content_hash for key, record in stored.files_by_key(list(held)).items()
                           if record.status in (PENDING, WORDS)})
    keyword.sync_changed(changed, _fetcher(stored), generation, unfinished, now)


def _sync_whole(
    stored: StoredCollection, keyword: KeywordIndex, generation: str, unfinished: dict[str, str], now: float,
) -> None:
    """Re-sync ``keyword`` from every row of the manifest."""
    files = stored.files()
    indexed = {k: r.content_hash for k, r in files.items() if r.status == INDEXED}
    # The manifest read whole (a paged read of unfinished rows can miss one that moved while
    # others finished): a file still being indexed keeps the words the index holds of it.
    unfinished = {**unfinished, **{k: r.content_hash for k, r in files.items() if r.status in (PENDING, WORDS)}}
    keyword.sync(indexed, _fetcher(stored), generation, unfinished, now)


def _fetcher(stored: StoredCollection) -> Callable[[str], list[tuple[str, str]]]:
    """A document's ``(chunk id, text)`` pairs, read from the store."""
    return lambda key: [(c.id, c.text) for c in stored.document_chunks(key)]
