"""Knowledge bases in Chroma: one collection of chunks and one manifest of files each.

The manifest lives beside the chunks, in the same Chroma (embedded or a server), so that
every client of a shared store sees the same files, statuses and generation. It is the
record of what is done: a file counts as indexed only once its manifest row says so, and
that row is written after its last chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import offline
from rag.breaker import Breaker
from rag.documents import Chunk, text_to_path
from rag.errors import CollectionExists, CollectionNotFound
from rag.storage.chroma_errors import server_breaker, translate_errors

if TYPE_CHECKING:
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult, Include

log = logging.getLogger(__name__)

_KIND = "archivist"
_NEXT, _OLD = "-next", "-old"  # a re-embed's new chunks while they are built; the old ones while swapped
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
# Seconds a Chroma server may take to accept a connection, and to send a response's next bytes
# (chromadb's own session waits for ever). The slowest requests the store sends, timed against
# `chroma run` on a loaded two-core machine: a 256-row upsert 0.7 s (1.8 s at worst), a
# 5,000-row page of vectors 1.9 s, deleting a 5,000-chunk document by filter 2.8 s. Ten seconds
# leaves them three to five times that; a hung server costs the calls in flight those ten
# seconds once, and the breaker spares every later call.
_CONNECT_TIMEOUT = 2.0
_READ_TIMEOUT = 10.0
_GENERATION_ID = "__generation__"
_GENERATION_STATUS = "generation"
PENDING, INDEXED, FAILED = "pending", "indexed", "failed"
# Read, and searchable by keyword where it was read, while its vectors are being made.
WORDS = "words"


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A knowledge base as the store knows it."""

    id: str
    name: str
    embedder: str
    dimension: int
    created: float
    adapter: str = ""  # a LoRA adapter (GGUF) the model applies when answering from this collection


@dataclass(slots=True)
class FileRecord:
    """One file's row in a collection's manifest."""

    key: str
    path: Path
    status: str
    content_hash: str = ""
    reason: str = ""
    pages: int = 0
    chunks: int = 0
    size: int = 0
    indexed_at: float = 0.0
    warnings: list[str] = field(default_factory=list)
    path_text: str = ""
    recognized: int = 0  # pages whose text was recognized from their image

    def metadata(self) -> dict[str, Any]:
        return {
            "path": self.path_text,
            "status": self.status,
            "hash": self.content_hash,
            "reason": self.reason,
            "pages": self.pages,
            "chunks": self.chunks,
            "size": self.size,
            "indexed_at": self.indexed_at,
            "warnings": json.dumps(self.warnings, ensure_ascii=False),
            "recognized": self.recognized,
        }

    @classmethod
    def from_metadata(cls, key: str, meta: dict[str, Any]) -> FileRecord:
        return cls(
            key=key,
            path=text_to_path(meta["path"]),
            path_text=meta["path"],
            status=meta["status"],
            content_hash=meta.get("hash", ""),
            reason=meta.get("reason", ""),
            pages=int(meta.get("pages", 0)),
            chunks=int(meta.get("chunks", 0)),
            size=int(meta.get("size", 0)),
            indexed_at=float(meta.get("indexed_at", 0.0)),
            warnings=json.loads(meta.get("warnings") or "[]"),
            recognized=int(meta.get("recognized", 0)),
        )


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
class StoredChunk:
    """A chunk as read back from the store."""

    id: str
    text: str
    metadata: dict[str, Any]
    distance: float | None = None


class VectorStore:
    """The collections of one Chroma: embedded in a folder, or a server shared by a team.

    A server's every call goes through ``breaker``: once the server did not answer, calls raise
    ``StoreUnavailable`` at once until its heartbeat answers again (an embedded store has none)."""

    def __init__(self, client: ClientAPI, location: str, owns_connections: bool = False,
                 breaker: Breaker | None = None) -> None:
        self._client = client
        self.location = location
        self._owns_connections = owns_connections
        self.breaker = breaker
        with translate_errors("asking Chroma its batch size", breaker):
            self.max_batch = max(1, min(client.get_max_batch_size(), 4096))

    def close(self) -> None:
        """Release a server client's sockets (an embedded client's system is shared by its folder's other clients)."""
        if self.breaker is not None:
            self.breaker.close()
        if self._owns_connections:
            self._client.close()
            # Chroma 1.5's close() stops its system but leaves the HTTP session's sockets open.
            _http_session(self._client).close()

    @classmethod
    def embedded(cls, path: Path) -> VectorStore:
        """A store in a local folder (Chroma's ``PersistentClient``)."""
        offline.enforce()
        import chromadb
        from chromadb.config import Settings

        with translate_errors(f"opening the store in {path}"):
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        return cls(client, f"file:{path}")

    @classmethod
    def server(cls, host: str, port: int, ssl: bool = False, token: str = "", timeout: float = _READ_TIMEOUT,
               retry_every: float = 2.0) -> VectorStore:
        """A store on a Chroma server (``HttpClient``), with an optional bearer token. A request waits at
        most ``timeout`` seconds for the server's next bytes; after one that got no answer, calls fail at
        once, and the server's heartbeat is tried every ``retry_every`` seconds until it answers."""
        offline.enforce()
        import chromadb
        import httpx
        from chromadb.config import Settings

        location = f"{'https' if ssl else 'http'}://{host}:{port}"
        headers = {"Authorization": f"Bearer {token}"} if token else None
        bounded = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT))
        with translate_errors(f"connecting to the Chroma server at {location}"):
            # HttpClient() makes requests before its session can be bounded: ask first, bounded, so that a
            # hung server fails the store's opening instead of holding it for ever.
            httpx.get(f"{location}/api/v2/heartbeat", headers=headers, timeout=bounded)
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, headers=headers,
                                         settings=Settings(anonymized_telemetry=False))
        _http_session(client).timeout = bounded
        return cls(client, location, owns_connections=True,
                   breaker=server_breaker(location, client.heartbeat, retry_every))

    def collections(self) -> list[CollectionInfo]:
        """Every knowledge base in this store, by name."""
        with translate_errors("listing collections", self.breaker):
            listed = self._client.list_collections()
            names = {c.name for c in listed}
            for c in listed:  # a re-embed cut off between its two renames: put the old one back
                if c.name.endswith(_OLD) and c.name.removesuffix(_OLD) not in names:
                    c.modify(name=c.name.removesuffix(_OLD))
                    log.warning("restored collection %s after an unfinished re-embed", c.name.removesuffix(_OLD))
                    return self.collections()
            found = [self._info(c) for c in listed]
        return sorted((c for c in found if c is not None), key=lambda c: c.name.casefold())

    def find(self, name: str) -> CollectionInfo:
        """The knowledge base called ``name``."""
        for info in self.collections():
            if info.name == name:
                return info
        raise CollectionNotFound(name)

    def create(self, name: str, embedder: str, dimension: int) -> CollectionInfo:
        """A new, empty knowledge base whose vectors come from ``embedder``."""
        name = name.strip()
        if not name:
            raise ValueError("a collection needs a name")
        if any(c.name == name for c in self.collections()):
            raise CollectionExists(name)
        # The id follows from the name, so that two clients creating "Docs" at once collide in
        # Chroma (one wins, the other finds it) instead of making two collections of one name.
        cid = "kb-" + hashlib.sha1(name.encode()).hexdigest()[:16]
        created = time.time()
        metadata = {"kind": _KIND, "name": name, "embedder": embedder, "dimension": dimension, "created": created}
        try:
            self._create_pair(cid, metadata, name)
        except CollectionExists:
            if any(c.name == name for c in self.collections()):
                raise
            cid = "kb-" + uuid.uuid4().hex[:16]  # the id is taken by a collection since renamed
            self._create_pair(cid, metadata, name)
        return CollectionInfo(cid, name, embedder, dimension, created)

    def _create_pair(self, cid: str, metadata: dict[str, Any], name: str) -> None:
        with translate_errors(f"creating collection {name!r}", self.breaker):
            try:
                self._client.create_collection(
                    cid, metadata=metadata, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
                )
            except Exception as exc:
                if "already exists" in str(exc):
                    raise CollectionExists(name) from exc
                raise
            self._client.get_or_create_collection(cid + "-files", metadata={"kind": _KIND + "-files"}, embedding_function=None)

    def rename(self, name: str, new_name: str) -> CollectionInfo:
        """Give a knowledge base another name; its contents stay."""
        new_name = new_name.strip()
        if new_name != name and any(c.name == new_name for c in self.collections()):
            raise CollectionExists(new_name)
        return self._update(name, f"renaming collection {name!r}", {"name": new_name})

    def set_adapter(self, name: str, adapter: str) -> CollectionInfo:
        """Name the LoRA adapter answers from this knowledge base use ("" for none)."""
        return self._update(name, f"changing the adapter of collection {name!r}", {"adapter": adapter})

    def _update(self, name: str, doing: str, changes: dict[str, str]) -> CollectionInfo:
        """Change fields of a knowledge base's metadata (and of its ``CollectionInfo``)."""
        info = self.find(name)
        with translate_errors(doing, self.breaker):
            collection = self._client.get_collection(info.id, embedding_function=None)
            collection.modify(metadata={**(collection.metadata or {}), **changes})
        return replace(info, **changes)

    def delete(self, name: str) -> None:
        """Delete a knowledge base with its chunks and manifest."""
        info = self.find(name)
        with translate_errors(f"deleting collection {name!r}", self.breaker):
            for cid in (info.id, info.id + "-files"):
                try:
                    self._client.delete_collection(cid)
                except Exception as exc:  # a half-deleted pair must still be deletable
                    if self.breaker is not None and isinstance(exc, self.breaker.failures):
                        raise  # the server did not answer: nothing is known to be deleted
                    log.warning("deleting %s: %s", cid, exc)

    def start_rebuild(self, info: CollectionInfo, embedder: str, dimension: int) -> Rebuild:
        """A new, hidden chunk collection for ``info`` with another embedding model; the old
        one serves searches until ``Rebuild.finish`` swaps them."""
        name = info.id + _NEXT
        with translate_errors(f"preparing to re-embed {info.name!r}", self.breaker):
            with contextlib.suppress(Exception):  # a stale one from a cancelled or crashed run
                self._client.delete_collection(name)
            metadata = {"kind": _KIND + _NEXT, "name": info.name, "embedder": embedder, "dimension": dimension,
                        "created": info.created, "adapter": info.adapter}
            chunks = self._client.create_collection(
                name, metadata=metadata, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        return Rebuild(self._client, info, chunks, metadata, self.breaker)

    def open(self, info: CollectionInfo) -> StoredCollection:
        """The chunks and manifest of one knowledge base."""
        with translate_errors(f"opening collection {info.name!r}", self.breaker):
            chunks = self._client.get_collection(info.id, embedding_function=None)
            files = self._client.get_or_create_collection(info.id + "-files", embedding_function=None)
        return StoredCollection(info, chunks, files, self.max_batch, self.breaker)

    @staticmethod
    def _info(collection: Collection) -> CollectionInfo | None:
        meta = collection.metadata or {}
        if meta.get("kind") != _KIND or collection.name.endswith(_OLD):
            return None
        return CollectionInfo(
            id=collection.name,
            name=str(meta.get("name", collection.name)),
            embedder=str(meta.get("embedder", "")),
            dimension=int(meta.get("dimension", 0)),
            created=float(meta.get("created", 0.0)),
            adapter=str(meta.get("adapter", "")),
        )


class Rebuild:
    """Chunks re-embedded into a hidden collection, swapped in whole when complete."""

    def __init__(self, client: ClientAPI, info: CollectionInfo, chunks: Collection, metadata: dict[str, Any],
                 breaker: Breaker | None = None) -> None:
        self._client = client
        self._info = info
        self._chunks = chunks
        self._metadata = metadata
        self._breaker = breaker

    def write(self, chunks: Sequence[StoredChunk], vectors: np.ndarray) -> None:
        with translate_errors("writing re-embedded chunks", self._breaker):
            for lo in range(0, len(chunks), _WRITE_BATCH):
                part = chunks[lo : lo + _WRITE_BATCH]
                self._chunks.upsert(
                    ids=[c.id for c in part], embeddings=vectors[lo : lo + len(part)],
                    documents=[c.text for c in part], metadatas=[c.metadata for c in part],
                )

    def finish(self) -> CollectionInfo:
        """Swap: the old chunks step aside, the new take the collection's id, the old go."""
        cid = self._info.id
        with translate_errors(f"switching {self._info.name!r} to its new vectors", self._breaker):
            old = self._client.get_collection(cid, embedding_function=None)
            old.modify(name=cid + _OLD)
            self._chunks.modify(name=cid, metadata={**self._metadata, "kind": _KIND})
            self._client.delete_collection(cid + _OLD)
        return CollectionInfo(cid, self._info.name, str(self._metadata["embedder"]), int(self._metadata["dimension"]),
                              self._info.created, self._info.adapter)

    def abandon(self) -> None:
        """Drop the half-built collection; the old one was never touched."""
        with contextlib.suppress(Exception), translate_errors("dropping re-embedded chunks", self._breaker):
            self._client.delete_collection(self._chunks.name)


class StoredCollection:
    """One knowledge base: its chunks (with vectors) and its manifest of files."""

    def __init__(self, info: CollectionInfo, chunks: Collection, files: Collection, max_batch: int,
                 breaker: Breaker | None = None) -> None:
        self.info = info
        self._chunks = chunks
        self._files = files
        self._max_batch = max_batch
        self._breaker = breaker

    # -- manifest -------------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        """Every file in the manifest, by document key."""
        return {
            key: FileRecord.from_metadata(key, meta)
            for rows in _pages(self._files, ["metadatas"], "reading the manifest", self._breaker)
            for key, meta in zip(rows["ids"], rows["metadatas"] or [], strict=False)
            if key != _GENERATION_ID and meta
        }

    def file(self, key: str) -> FileRecord | None:
        """One file's manifest row, if any."""
        with translate_errors("reading the manifest", self._breaker):
            rows = self._files.get(ids=[key], include=["metadatas"])
        if not rows["ids"]:
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

    def put_file(self, record: FileRecord) -> None:
        """Write one manifest row (insert or replace)."""
        self.put_files([record])

    def put_files(self, records: Sequence[FileRecord]) -> None:
        """Write manifest rows (insert or replace), as many in one call as Chroma takes."""
        with translate_errors("writing the manifest", self._breaker):
            for lo in range(0, len(records), self._max_batch):
                part = records[lo : lo + self._max_batch]
                self._files.upsert(ids=[r.key for r in part], embeddings=[[0.0]] * len(part),
                                   metadatas=[r.metadata() for r in part])

    def drop_file(self, key: str) -> None:
        """Forget one file in the manifest."""
        with translate_errors("writing the manifest", self._breaker):
            self._files.delete(ids=[key])

    def generation(self) -> str:
        """A token that changes whenever a file is indexed or removed, by any client."""
        with translate_errors("reading the manifest", self._breaker):
            rows = self._files.get(ids=[_GENERATION_ID], include=["metadatas"])
        return str(rows["metadatas"][0]["value"]) if rows["ids"] else "0"

    def bump_generation(self) -> None:
        """Mark the collection changed."""
        with translate_errors("writing the manifest", self._breaker):
            self._files.upsert(
                ids=[_GENERATION_ID], embeddings=[[0.0]], metadatas=[{"status": _GENERATION_STATUS, "value": uuid.uuid4().hex}]
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


def _http_session(client: ClientAPI) -> httpx.Client:
    """The HTTP session of a Chroma server's client: private to chromadb, so reached here alone, and loudly
    missed if a new chromadb keeps it elsewhere."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        raise TypeError(f"chromadb's HttpClient keeps no httpx session where this store looks for it ({session!r})")
    return session


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
