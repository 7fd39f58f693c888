"""An ingest's second pass: the chunks of read files embedded a batch at a time on the
embedder's own thread, and written to the store with their vectors."""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.cancel import CancelToken
from rag.documents import LoadResult
from rag.embedding import Embedder
from rag.storage.collection import StoredCollection
from rag.storage.keyword_index import KeywordIndex


@dataclass(slots=True)
class FileJob:
    """A file on its way through an ingest: read into the keyword index, then embedded."""


    path: Path
    key: str
    path_text: str
    content_hash: str
    size: int
    result: LoadResult = field(default_factory=LoadResult)
    chunks_read: int = 0
    chunks_written: int = 0
    chunks_reused: int = 0
    reuse: dict[str, np.ndarray] = field(default_factory=dict)  # text -> vector, from the file's previous version


Rows = list[tuple[str, str, dict[str, Any]]]  # chunk id, text, the store's metadata


class EmbeddingPass:
    """The second pass, begun while the first still reads.

    A read file's chunks go, a batch at a time, to the embedder's own thread (of lower
    priority: reading and searches come first); while it encodes one batch, this thread reads
    on or writes the batch before to the store. A file is complete once all its vectors are
    written, and is then committed by the caller. Chunks come back from the keyword index, so
    nothing waits in memory but the batches in flight.
    """

    def __init__(self, collection: StoredCollection, keyword: KeywordIndex, embedder: Embedder, batch_chunks: int,
                 cancel: CancelToken) -> None:
        self._collection, self._keyword, self._embedder, self._size = collection, keyword, embedder, batch_chunks
        self._cancel = cancel
        self._queue: deque[FileJob] = deque()  # read, none of its chunks taken yet
        self._taking: tuple[FileJob, Iterator[Rows]] | None = None
        self._batch: list[tuple[FileJob, Rows]] = []
        self._running: deque[tuple[Future[np.ndarray] | None, list[tuple[FileJob, Rows]]]] = deque()
        self._taken: list[FileJob] = []  # every chunk taken, waiting for the last vectors to be written
        self.written = 0  # chunks written to the store in this ingest

    def add(self, job: FileJob) -> None:
        self._queue.append(job)

    @property
    def finished(self) -> bool:
        return not (self._queue or self._taking or self._batch or self._running or self._taken)

    def at(self) -> tuple[Path | None, float]:
        """The file being written, and how much of it is."""
        job = self._running[0][1][-1][0] if self._running else self._taking[0] if self._taking else None
        return (job.path, job.chunks_written / max(1, job.chunks_read)) if job else (None, 0.0)

    def advance(self, wait: bool) -> list[FileJob]:
        """Hand the embedder batches until it has two, then write the oldest once its vectors
        are done (``wait``: waiting for them; otherwise only if they are). While the first pass
        reads (not ``wait``), only full batches are handed on. Returns the files now complete."""
        while len(self._running) < 2 and self._fill(short=wait):
            texts = [text for job, rows in self._batch for _, text, _ in rows if text not in job.reuse]
            self._running.append((self._embedder.submit(texts) if texts else None, self._batch))
            self._batch = []
        if wait and self._running and self._running[0][0] is not None:
            first = self._running[0][0]
            while not first.done() and not self._cancel.cancelled:  # Stop heard within a moment, not a batch
                concurrent.futures.wait([first], timeout=0.2)
        if self._running and (self._running[0][0] is None or self._running[0][0].done()):
            future, batch = self._running.popleft()
            self._write(batch, future.result() if future is not None else None)
        drained = not (self._queue or self._taking or self._batch or self._running)
        complete: list[FileJob] = []
        waiting: list[FileJob] = []
        for job in self._taken:
            (complete if drained or job.chunks_written >= job.chunks_read else waiting).append(job)
        self._taken = waiting
        return complete

    def _fill(self, short: bool) -> bool:
        """Take chunks of read files until a batch is full; whether there is a batch to hand on."""
        size = self._size
        while sum(len(rows) for _, rows in self._batch) < size:
            if self._taking is None:
                if not self._queue:
                    return short and bool(self._batch)
                job = self._queue.popleft()
                self._taking = (job, self._keyword.held(job.key, size))
            job, rows_left = self._taking
            rows = next(rows_left, None)
            if rows is None:
                self._taken.append(job)
                self._taking = None
            else:
                self._batch.append((job, rows))
        return True

    def _write(self, batch: list[tuple[FileJob, Rows]], fresh: np.ndarray | None) -> None:
        """Write a batch's chunks with their vectors (those unchanged since the file's last
        version keep theirs) to the store, the chunks of all its files in one call (a write
        costs the same whatever its size)."""
        vectors_made = iter(fresh if fresh is not None else ())
        rows_written = [row for _, rows in batch for row in rows]
        if not rows_written:
            return
        vectors = [job.reuse[text] if text in job.reuse else next(vectors_made) for job, rows in batch for _, text, _ in rows]
        ids, documents, metadatas = zip(*rows_written, strict=True)
        self._collection.add_chunks(ids, documents, metadatas, np.stack(vectors))
        for job, rows in batch:
            job.chunks_written += len(rows)
            job.chunks_reused += sum(1 for _, text, _ in rows if text in job.reuse)
            self.written += len(rows)
