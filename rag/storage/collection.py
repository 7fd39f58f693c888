"""One knowledge base in Chroma: its chunks (with their vectors) and its manifest of files.

The manifest lives beside the chunks, in the same Chroma (embedded or a server), so that
every client of a shared store sees the same files, statuses and generation. It is the
record of what is done: a file counts as indexed only once its manifest row says so, and
that row is written after its last chunk.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.breaker import Breaker
from rag.documents import Chunk
from rag.storage.chroma_errors import translate_errors
from rag.storage.manifest import CHANGED, PENDING, REMOVED, WORDS, FileRecord

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult, Include

    from rag.storage.vectors import CollectionInfo

# Chroma's bindings hold Python's lock while they write, and each upsert has a fixed cost of
# about 25 ms: 256 rows a call (about 0.13 s) write three times more passages a second than
# 16 did, and still hold the lock briefly (the window lives in another process).
_WRITE_BATCH = 256
# Rows per read: chromadb's local get() binds one SQL variable per row it returns, and
# SQLite takes at most 32,766, so no read may ask for a whole collection at once.
_READ_PAGE = 5000
# Documents a search names in Chroma's filter at once (one SQL variable each, 32,766 at most).
_FILTERED_DOCUMENTS = 1000
# Chunks of files being indexed that may be in the store: the embedding batches being written.
_UNFINISHED_CHUNKS = 4 * _WRITE_BATCH
# The manifest's one row that is not a file: the collection's generation.
_GENERATION_ID = "__generation__"
_GENERATION_STATUS = "generation"
# On the generation's row: a read of the rows stamped since a time before this one misses changes;
# and the value this version wrote last, which differs from the value once an older version moved it.
_WHOLE_BEFORE, _STAMPED = "whole_before", "stamped"
# How long a removed file's tombstone stays in the manifest (seconds): a keyword index that last
# synced longer ago than this may have missed a removal, and reads the whole manifest again.
TOMBSTONE_LIFE = 7 * 24 * 3600.0
# Tombstones past their life are swept by the client removing files, at most this often (seconds).
_SWEEP_EVERY = 3600.0


def chunk_row(key: str, path_text: str, content_hash: str, chunk: Chunk) -> tuple[str, str, dict[str, Any]]:
    """A chunk of document ``key`` as the store keeps it: its id, its text and its metadata."""
    meta: dict[str, Any] = {"doc": key, "path": path_text, "hash": content_hash, "start": chunk.start, "end": chunk.end,
                            "index": chunk.index}
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.heading:
        meta["heading"] = chunk.heading
    if chunk.box is not None:
        meta["box"] = ",".join(f"{v:.4f}" for v in chunk.box)
    return f"{key}:{chunk.index}", chunk.text, meta


@dataclass(frozen=True, slots=True)
class ManifestChanges:
    """The manifest rows written since a time: each file's status and content hash by key (a
    removed file's status is ``REMOVED``), and whether they say everything that changed since:
    not when a version that stamps no rows moved the generation since (last, or before a newer
    version moved it again: ``whole_before``, see ``bump_generation``), nor when the read took
    more than one page (a row stamped meanwhile may shift a page's rows past its reader)."""

    files: dict[str, tuple[str, str]]
    complete: bool


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back from the store."""

    id: str
    text: str
    metadata: dict[str, Any]
    distance: float | None = None


class StoredCollection:
    """One knowledge base: its chunks (with vectors) and its manifest of files.

    ``clock`` stamps the manifest rows written (``rag.storage.manifest.CHANGED``); tests pass
    their own, so that they need not sleep."""

    def __init__(self, info: CollectionInfo, chunks: Collection, files: Collection, max_batch: int,
                 breaker: Breaker | None = None, clock: Callable[[], float] = time.time) -> None:
        self.info = info
        self._chunks = chunks
        self._files = files
        self._max_batch = max_batch
        self._breaker = breaker
        self.clock = clock
        self._swept_at: float | None = None

    # -- manifest -------------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        """Every file in the manifest, by document key."""
        return {
            key: FileRecord.from_metadata(key, meta)
            for rows in _pages(self._files, ["metadatas"], "reading the manifest", self._breaker)
            for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False)
            if _is_file(key, meta)
        }

    def files_by_key(self, keys: Sequence[str]) -> dict[str, FileRecord]:
        """The manifest rows of these document keys (those it has), read by id: what an ingest
        or removal of a few files needs, at the same cost in a manifest of any size."""
        keys = list(dict.fromkeys(keys))  # Chroma refuses an id asked twice
        found: dict[str, FileRecord] = {}
        for lo in range(0, len(keys), _READ_PAGE):
            with translate_errors("reading the manifest", self._breaker):
                rows = self._files.get(ids=list(keys[lo : lo + _READ_PAGE]), include=["metadatas"])
            found.update((key, FileRecord.from_metadata(key, meta))
                         for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False)
                         if _is_file(key, meta))
        return found

    def unfinished_files(self) -> dict[str, FileRecord]:
        """The manifest rows of files whose indexing started and has not finished (pending or
        words), read by a filter on their status rather than among every row."""
        where = {"status": {"$in": [PENDING, WORDS]}}
        return {
            key: FileRecord.from_metadata(key, meta)
            for rows in _pages(self._files, ["metadatas"], "reading the manifest", self._breaker, where)
            for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False)
            if meta
        }

    def file(self, key: str) -> FileRecord | None:
        """One file's manifest row, if any."""
        with translate_errors("reading the manifest", self._breaker):
            rows = self._files.get(ids=[key], include=["metadatas"])
        if not rows["ids"] or not _is_file(key, rows["metadatas"][0]):
            return None
        return FileRecord.from_metadata(key, rows["metadatas"][0])

    def pending_keys(self) -> list[str]:
        """Keys of files whose indexing started and has not finished (left out of vector searches)."""
        return list(self.state()[1])

    def state(self) -> tuple[str, dict[str, str]]:
        """The generation, and the content hashes of the files whose indexing started and has
        not finished (pending or words only), in one read (searches need both)."""
        generation = "0"
        unfinished: dict[str, str] = {}
        where = {"status": {"$in": [PENDING, WORDS, _GENERATION_STATUS]}}
        for rows in _pages(self._files, ["metadatas"], "reading the manifest", self._breaker, where):
            for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False):
                if key == _GENERATION_ID:
                    generation = str(meta["value"])
                else:
                    unfinished[key] = str(meta.get("hash", ""))
        return generation, unfinished

    def changed_since(self, since: float) -> ManifestChanges:
        """The rows written at or after ``since`` (by the store's clock), read by a filter on
        their stamps rather than among every row. Rows written by a version that stamped none
        are never among them."""
        files: dict[str, tuple[str, str]] = {}
        complete, pages = False, 0
        where = {CHANGED: {"$gte": float(since)}}
        for rows in _pages(self._files, ["metadatas"], "reading the manifest", self._breaker, where):
            pages += 1
            for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False):
                if key == _GENERATION_ID:
                    complete = _moved_by_this_version(meta) and float(meta.get(_WHOLE_BEFORE, 0.0)) < since
                elif meta:
                    files[key] = (str(meta.get("status", "")), str(meta.get("hash", "")))
        return ManifestChanges(files, complete and pages <= 1)

    def put_file(self, record: FileRecord) -> None:
        """Write one manifest row (insert or replace)."""
        self.put_files([record])

    def put_files(self, records: Sequence[FileRecord]) -> None:
        """Write manifest rows (insert or replace), as many in one call as Chroma takes, each
        stamped with the time of its call (just before it: a reader's margin covers the call)."""
        with translate_errors("writing the manifest", self._breaker):
            for lo in range(0, len(records), self._max_batch):
                part = records[lo : lo + self._max_batch]
                changed = float(self.clock())
                self._files.upsert(ids=[r.key for r in part], embeddings=[[0.0]] * len(part),
                                   metadatas=[{**r.metadata(), CHANGED: changed} for r in part])

    def drop_file(self, key: str) -> None:
        """Forget one file in the manifest: its row becomes a stamped tombstone, which every read
        of files passes over, so that a keyword index reading the rows changed since it last
        synced learns of the removal (a deleted row is in no such read). Tombstones older than
        ``TOMBSTONE_LIFE`` are swept here, at most once in ``_SWEEP_EVERY``."""
        now = float(self.clock())
        with translate_errors("writing the manifest", self._breaker):
            self._files.upsert(ids=[key], embeddings=[[0.0]], metadatas=[{"status": REMOVED, "path": "", CHANGED: now}])
            if self._swept_at is None or not 0 <= now - self._swept_at < _SWEEP_EVERY:
                expired: dict[str, Any] = {"$and": [{"status": REMOVED}, {CHANGED: {"$lt": now - TOMBSTONE_LIFE}}]}
                self._files.delete(where=expired)
                self._swept_at = now

    def generation(self) -> str:
        """A token that changes whenever a file is indexed or removed, by any client."""
        with translate_errors("reading the manifest", self._breaker):
            rows = self._files.get(ids=[_GENERATION_ID], include=["metadatas"])
        return str(rows["metadatas"][0]["value"]) if rows["ids"] else "0"

    def bump_generation(self) -> None:
        """Mark the collection changed. The generation's row says, besides its value and stamp,
        which value this version wrote (``_STAMPED``: a version that stamps nothing changes the
        value alone, Chroma keeping the other fields), and the time before which no read by
        stamps can be trusted (``_WHOLE_BEFORE``): set when this version moves a generation that
        such a version moved last, whose changes no read by stamps finds; carried forward after."""
        now = float(self.clock())
        value = uuid.uuid4().hex
        with translate_errors("writing the manifest", self._breaker):
            rows = self._files.get(ids=[_GENERATION_ID], include=["metadatas"])
            before = rows["metadatas"][0] if rows["ids"] and rows["metadatas"] else None
            whole_before = float(before.get(_WHOLE_BEFORE, 0.0)) if before else 0.0
            if before is not None and not _moved_by_this_version(before):
                whole_before = now
            self._files.upsert(
                ids=[_GENERATION_ID], embeddings=[[0.0]],
                metadatas=[{"status": _GENERATION_STATUS, "value": value, _STAMPED: value, CHANGED: now,
                            _WHOLE_BEFORE: whole_before}],
            )

    # -- chunks ---------------------------------------------------------------------------

    def count(self) -> int:
        """How many chunks the collection holds."""
        with translate_errors("counting chunks", self._breaker):
            return int(self._chunks.count())

    def delete_chunks(self, key: str, count: int | None = None) -> None:
        """Remove every chunk of one document.

        When the manifest knows how many chunks there are, they go by id (fast, and short
        holds of Python's lock); otherwise by a metadata query (after a crash, say).
        """
        with translate_errors("deleting chunks", self._breaker):
            if count is None:
                self._chunks.delete(where={"doc": key})
                return
            ids = [f"{key}:{i}" for i in range(count)]
            for lo in range(0, len(ids), _WRITE_BATCH * 4):
                self._chunks.delete(ids=ids[lo : lo + _WRITE_BATCH * 4])

    def add_chunks(
        self, ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[dict[str, Any]], vectors: np.ndarray
    ) -> None:
        """Write chunks (made by ``chunk_row``) with their vectors; ids are deterministic, so a retry overwrites.
        Chunks of many files go best in one call: each upsert has a fixed cost."""
        step = min(self._max_batch, _WRITE_BATCH)
        with translate_errors("writing chunks", self._breaker):
            for lo in range(0, len(ids), step):
                hi = lo + step
                self._chunks.upsert(
                    ids=list(ids[lo:hi]), embeddings=vectors[lo:hi], documents=list(documents[lo:hi]),
                    metadatas=list(metadatas[lo:hi]),
                )

    def query(self, vector: np.ndarray, n: int, keys: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> list[StoredChunk]:
        """The ``n`` chunks nearest to ``vector``, optionally only from documents ``keys`` and
        never from documents ``exclude`` (files being indexed). Chroma binds one SQL variable per
        document a filter names: many ``keys`` are asked for a share at a time and merged; many
        ``exclude`` are filtered here, from nearest chunks enough to hold those files' few
        chunks in the store (only the batches being written)."""
        if keys is not None and len(keys) > _FILTERED_DOCUMENTS:
            shares = [self.query(vector, n, keys[lo:lo + _FILTERED_DOCUMENTS], exclude)
                      for lo in range(0, len(keys), _FILTERED_DOCUMENTS)]
            return sorted((c for share in shares for c in share), key=lambda c: c.distance)[:n]
        skip = set(exclude) if len(exclude) > _FILTERED_DOCUMENTS else set()
        where = _where(keys, () if skip else exclude)
        with translate_errors("searching", self._breaker):
            result = self._chunks.query(query_embeddings=[vector], n_results=n + (_UNFINISHED_CHUNKS if skip else 0),
                                        where=where, include=["documents", "metadatas", "distances"])
        chunks = [
            StoredChunk(id=i, text=d or "", metadata=m or {}, distance=float(dist))
            for i, d, m, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
            )
        ]
        return [c for c in chunks if c.metadata.get("doc") not in skip][:n]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked (missing ids left out)."""
        found: dict[str, StoredChunk] = {}
        for lo in range(0, len(ids), _READ_PAGE):
            with translate_errors("reading chunks", self._breaker):
                rows = self._chunks.get(ids=list(ids[lo : lo + _READ_PAGE]), include=["documents", "metadatas"])
            found.update((c.id, c) for c in _stored(rows))
        return [found[i] for i in ids if i in found]

    def all_chunks(self, batch: int = 256) -> Iterator[list[StoredChunk]]:
        """Every chunk, a batch at a time (text and metadata, no vectors)."""
        for rows in _pages(self._chunks, ["documents", "metadatas"], "reading chunks", self._breaker,
                           page=min(batch, _READ_PAGE)):
            yield _stored(rows)

    def vectors_by_text(self, key: str) -> dict[str, np.ndarray]:
        """Chunk text -> its vector, for one document (so that an edited file's unchanged
        chunks need not be embedded again)."""
        return {
            text: np.asarray(vector, dtype=np.float32)
            for rows in _pages(self._chunks, ["documents", "embeddings"], "reading chunks", self._breaker, {"doc": key})
            for text, vector in zip(rows["documents"] or [], _embeddings(rows), strict=True)
            if text
        }

    def document_chunks(self, key: str) -> list[StoredChunk]:
        """Every chunk of one document, in order."""
        chunks = [c for rows in _pages(self._chunks, ["documents", "metadatas"], "reading chunks", self._breaker, {"doc": key})
                  for c in _stored(rows)]
        return sorted(chunks, key=lambda c: int(c.metadata.get("index", 0)))


def _pages(
    collection: Collection, include: Include, doing: str, breaker: Breaker | None, where: Mapping[str, Any] | None = None,
    page: int = _READ_PAGE,
) -> Iterator[GetResult]:
    """The rows of ``collection`` (those matching ``where``), ``page`` at a time: the one way
    this module reads more than a known handful of rows (see ``_READ_PAGE``). Rows written or
    deleted by another client meanwhile may be missed or seen twice, as in any paged read."""
    offset = 0
    while True:
        with translate_errors(doing, breaker):
            rows = collection.get(where=dict(where) if where else None, limit=page, offset=offset, include=include)
        if rows["ids"]:
            yield rows
        if len(rows["ids"]) < page:
            return
        offset += len(rows["ids"])


def _moved_by_this_version(generation: Mapping[str, Any]) -> bool:
    """Whether the generation's row was last written by a version that stamps its rows."""
    return CHANGED in generation and generation.get("value") == generation.get(_STAMPED)


def _is_file(key: str, meta: Mapping[str, Any] | None) -> bool:
    """Whether a manifest row is a file's (not the generation's, nor a removed file's tombstone)."""
    return key != _GENERATION_ID and meta is not None and bool(meta) and meta.get("status") != REMOVED


def _stored(rows: GetResult) -> list[StoredChunk]:
    return [StoredChunk(id=i, text=d or "", metadata=dict(m or {}))
            for i, d, m in zip(rows["ids"], rows["documents"] or [], rows["metadatas"] or [], strict=True)]


def _embeddings(rows: GetResult) -> Sequence[np.ndarray]:
    embeddings = rows["embeddings"]
    return [] if embeddings is None else list(embeddings)


def _where(keys: Sequence[str] | None, exclude: Sequence[str]) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if keys is not None:
        clauses.append({"doc": {"$in": list(keys)}})
    if exclude:
        clauses.append({"doc": {"$nin": list(exclude)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
