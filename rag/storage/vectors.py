"""The store: one Chroma, embedded in a folder or a server shared by a team, and its knowledge bases.

Each knowledge base is a pair of Chroma collections, its chunks and its manifest of files
(``rag.storage.collection``); a re-embed builds new chunks beside the old and swaps them in whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import offline
from rag.breaker import Breaker
from rag.errors import CollectionExists, CollectionNotFound
from rag.storage.chroma_errors import server_breaker, translate_errors
from rag.storage.collection import _WRITE_BATCH, StoredChunk, StoredCollection

if TYPE_CHECKING:
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

_KIND = "archivist"
_NEXT, _OLD = "-next", "-old"  # a re-embed's new chunks while they are built; the old ones while swapped

# Seconds a Chroma server may take to accept a connection, and to send a response's next bytes
# (chromadb's own session waits for ever). The slowest requests the store sends, timed against
# `chroma run` on a loaded two-core machine: a 256-row upsert 0.7 s (1.8 s at worst), a
# 5,000-row page of vectors 1.9 s, deleting a 5,000-chunk document by filter 2.8 s. Ten seconds
# leaves them three to five times that; a hung server costs the calls in flight those ten
# seconds once, and the breaker spares every later call.
_CONNECT_TIMEOUT = 2.0
_READ_TIMEOUT = 10.0
_CLOCK_CHECK = 600.0  # seconds between readings of a server's clock


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A knowledge base as the store knows it."""

    id: str
    name: str
    embedder: str
    dimension: int
    created: float
    adapter: str = ""  # a LoRA adapter (GGUF) the model applies when answering from this collection


class VectorStore:
    """The collections of one Chroma: embedded in a folder, or a server shared by a team.

    A server's every call goes through ``breaker``: once the server did not answer, calls raise
    ``StoreUnavailable`` at once until its heartbeat answers again (an embedded store has none).

    ``clock`` is the store's time, by which manifest rows are stamped (``rag.storage.manifest``):
    a server's, from its heartbeat, so that the stamps of writers on several machines agree
    whatever their own clocks say; an embedded store's writers share one machine's clock."""

    def __init__(self, client: ClientAPI, location: str, owns_connections: bool = False,
                 breaker: Breaker | None = None) -> None:
        self._client = client
        self.location = location
        self._owns_connections = owns_connections
        self.breaker = breaker
        self.local_clock = time.time  # this machine's (tests set one that is wrong)
        self._offset = 0.0  # the server's clock less this machine's
        self._offset_at: float | None = None  # when it was last measured (monotonic); None: never
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
        return StoredCollection(info, chunks, files, self.max_batch, self.breaker, clock=self.clock)

    def clock(self) -> float:
        """The store's time, in seconds since 1970: this machine's clock, corrected by how far the
        server's heartbeat says it is off (measured again every ten minutes; an embedded store's is
        this machine's own)."""
        if self._owns_connections and (self._offset_at is None or time.monotonic() - self._offset_at > _CLOCK_CHECK):
            try:
                before = self.local_clock()
                beat = self._client.heartbeat() / 1e9  # the server's time, nanoseconds
                after = self.local_clock()
                self._offset, self._offset_at = beat - (before + after) / 2, time.monotonic()
            except Exception as exc:  # noqa: BLE001 - the offset known stands; the write that follows says what failed
                log.info("the Chroma server's clock not read (%s)", exc)
        return self.local_clock() + self._offset

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


def _http_session(client: ClientAPI) -> httpx.Client:
    """The HTTP session of a Chroma server's client: private to chromadb, so reached here alone, and loudly
    missed if a new chromadb keeps it elsewhere."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        raise TypeError(f"chromadb's HttpClient keeps no httpx session where this store looks for it ({session!r})")
    return session
