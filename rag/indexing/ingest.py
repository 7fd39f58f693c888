"""Ingestion: files in, chunks and vectors out, one file at a time succeeding or failing alone.

Crash safety rests on one order of writes per file:

1. the manifest row says ``pending`` (with the new content hash);
2. the file's old chunks go; its new chunks are written to the keyword index, which then
   makes the file searchable by its words, and the manifest row says ``words``;
3. its chunks are embedded and written to the store under deterministic ids;
4. the manifest row says ``indexed``.

A process killed anywhere leaves at worst a ``pending`` or ``words`` row, which vector
searches ignore and the next ingest redoes from step 2; deterministic ids mean a redo never
duplicates a chunk. Chunks of several small files are embedded together, for speed, but
each file is still committed on its own.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.cancel import CancelToken
from rag.documents import Chunk, LoadResult, display_path, document_key, path_to_text
from rag.embedding import Embedder
from rag.errors import DocumentError
from rag.indexing import loaders
from rag.indexing.chunking import chunk_sections
from rag.storage.keyword_index import KeywordIndex
from rag.storage.vectors import FAILED, INDEXED, PENDING, WORDS, FileRecord, StoredCollection, chunk_row

log = logging.getLogger(__name__)

_HASH_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """How documents are read and cut: sizes in the embedder's tokens, and whether the text
    of scans and images is recognized."""

    max_tokens: int = 200
    overlap: int = 40
    recognize_text: bool = True


@dataclass(slots=True)
class IngestProgress:
    """Where an ingest stands, for a progress bar."""

    files_total: int
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    chunks_done: int = 0
    files_read: int = 0  # the first pass's place: files read (or found unchanged, or failed) so far
    files_searchable: int = 0  # read, and searchable by their words (their vectors may still be coming)
    embedding: bool = False  # the second pass: every file is read, the last vectors are being made
    current: Path | None = None
    current_fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file: ``indexed``, ``unchanged``, ``failed`` or ``removed``."""

    path: Path
    status: str
    reason: str = ""
    chunks: int = 0
    pages: int = 0
    warnings: tuple[str, ...] = ()
    recognized: int = 0  # pages whose text was recognized from their image
    reused: int = 0  # chunks unchanged since the file's last version, whose vectors were kept


@dataclass(slots=True)
class IngestReport:
    """The outcome of one ingest: a line per file, and whether it was cancelled."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    cancelled: bool = False
    skipped: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[FileOutcome]:
        """The files that could not be indexed."""
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def chunks(self) -> int:
        """Chunks written in this ingest."""
        return sum(o.chunks for o in self.outcomes if o.status == INDEXED)


ProgressCallback = Callable[[IngestProgress], None]


def content_hash(path: Path, cancel: CancelToken | None = None) -> str:
    """A digest of the file's bytes, read in blocks (never the whole file at once)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            if cancel is not None and cancel.cancelled:
                break
    return digest.hexdigest()


def within(file: Path, folder: Path) -> bool:
    """Whether ``file`` lies inside ``folder`` (resolved) once symbolic links are followed."""
    try:
        return file.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a loop of links
        return False


def discover(paths: Iterable[Path], confine: bool = False) -> tuple[list[Path], list[Path], int]:
    """Expand folders (recursively, hidden entries skipped) into files.

    Returns ``(files, folders, skipped)``: files named directly are kept whatever their
    type, so an unsupported one is reported; files found in folders are kept only when a
    loader exists for them and, with ``confine``, when they lie inside the folder (a
    symbolic link out of it is skipped: a folder a server offers must not lead to the rest
    of its disk), the rest counted as skipped.
    """
    files: list[Path] = []
    folders: list[Path] = []
    skipped = 0
    seen: set[Path] = set()
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            folders.append(path)
            inside = path.resolve() if confine else None
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    file = Path(root) / name
                    if not loaders.is_supported(file) or (inside is not None and not within(file, inside)):
                        skipped += 1
                    elif file not in seen:
                        seen.add(file)
                        files.append(file)
        elif path not in seen:
            seen.add(path)
            files.append(path)
    return files, folders, skipped


@dataclass(slots=True)
class _Job:
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


class Ingestor:
    """Runs ingests into one collection with one embedder; plain synchronous code.

    An ingest has two passes. The first reads every file and writes its chunks to the
    keyword index, text included: each file is searchable by its words as soon as it is
    read. The second embeds those chunks, taking them back from the keyword index (so
    nothing waits in memory), and commits each file once its vectors are in the store; it
    begins while the first still reads, on the embedder's own thread (``_Embedding``).
    """

    def __init__(
        self,
        collection: StoredCollection,
        keyword: KeywordIndex,
        embedder: Embedder,
        options: ChunkOptions = ChunkOptions(),
        batch_chunks: int = 256,
        confine: bool = False,
    ) -> None:
        self.collection = collection
        self.keyword = keyword
        self.embedder = embedder
        self.options = options
        self.batch_chunks = batch_chunks
        self.confine = confine  # see ``discover``

    def run(
        self,
        paths: Iterable[Path],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> IngestReport:
        """Index ``paths`` (files or folders); files already indexed and unchanged are skipped.

        Also finishes files a previous run left half-done, and forgets files that vanished
        from the folders given. ``force`` re-indexes unchanged files too.
        """
        started = time.perf_counter()
        cancel = cancel or CancelToken()
        files, folders, skipped = discover(paths, self.confine)
        manifest = self.collection.files()
        listed = set(files)
        for record in manifest.values():
            if record.status in (PENDING, WORDS) and record.path not in listed and record.path.exists():
                files.append(record.path)  # finish what a killed run started
                listed.add(record.path)
        report = IngestReport(skipped=skipped)
        gone = [
            r for r in manifest.values()
            if not r.path.exists() and (r.status in (PENDING, WORDS) or any(r.path.is_relative_to(f) for f in folders))
        ]
        for record in gone:
            self._forget(record)
            report.outcomes.append(FileOutcome(record.path, "removed"))
        self.keyword.drop_unfinished()

        sizes = {f: _size(f) for f in files}
        state = IngestProgress(files_total=len(files), bytes_total=sum(sizes.values()))

        def tell(current: Path | None = None, fraction: float = 0.0) -> None:
            if progress is not None:
                state.current, state.current_fraction = current, fraction
                progress(state)

        def done(outcomes: Iterable[FileOutcome], size: int) -> None:
            report.outcomes.extend(outcomes)
            state.files_done = len(report.outcomes) - len(gone)
            state.bytes_done += size

        tell()
        embedding = _Embedding(self, cancel)
        unmarked: list[_Job] = []
        marked_at = time.monotonic()

        def commit(jobs: list[_Job]) -> None:
            if jobs:
                # "indexed" supersedes "words": a file not yet marked must not be marked after this.
                unmarked[:] = [job for job in unmarked if not any(job is c for c in jobs)]
                done(self._commit(jobs), sum(j.size for j in jobs))
            state.chunks_done = embedding.written

        for position, path in enumerate(files):  # the first pass: read, and make searchable by words
            if cancel.cancelled:
                break
            state.files_read = position
            key = document_key(path)
            tell(path)
            try:
                digest = content_hash(path, cancel)
            except OSError as exc:
                done([self._fail_unopened(path, key, sizes[path], exc)], 0)
                continue
            record = manifest.get(key)
            if not force and record and record.status == INDEXED and record.content_hash == digest:
                done([FileOutcome(path, "unchanged", chunks=record.chunks, pages=record.pages)], sizes[path])
                continue
            job = _Job(path, key, path_to_text(path), digest, sizes[path])
            job.result.recognize = self.options.recognize_text
            job.result.cancel = cancel
            job.result.page_done = lambda page, job=job: tell(job.path, page / max(1, job.result.pages))
            self._start(job, record)
            try:
                self._read(job, cancel)
            except DocumentError as exc:
                done([self._fail(job, exc.reason)], job.size)
                continue
            except (UnicodeError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, MemoryError) as exc:
                # A parser choking on a strange file: record it and go on with the rest.
                log.exception("unexpected error reading %s", display_path(path))
                done([self._fail(job, f"could not be read ({type(exc).__name__}: {exc})")], job.size)
                continue
            if cancel.cancelled:
                break
            self.keyword.words(job.key, job.content_hash)
            unmarked.append(job)
            state.files_searchable += 1
            if len(unmarked) >= 64 or time.monotonic() - marked_at > 1.0:
                self._mark_words(unmarked)
                unmarked.clear()
                marked_at = time.monotonic()
            embedding.add(job)
            commit(embedding.advance(wait=False))  # the embedder works on what is read meanwhile
            tell(path, 1.0)
        self._mark_words(unmarked)
        state.files_read = len(files)

        state.embedding = True  # the second pass: what is left to embed, each file committed once its vectors are in
        tell(*embedding.at())
        while not cancel.cancelled:
            commit(embedding.advance(wait=True))
            if embedding.finished:
                break
            tell(*embedding.at())
        # Stopped, the batches still being embedded are let go: their files stay searchable by
        # words and are finished by the next ingest. Every file whose vectors are in is committed.
        report.cancelled = cancel.cancelled
        tell()
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, paths: Iterable[Path]) -> list[FileOutcome]:
        """Forget files (or every file under a folder) whether or not they still exist on disk."""
        targets = [Path(os.path.abspath(p)) for p in paths]
        outcomes = []
        for record in self.collection.files().values():
            if any(record.path == t or record.path.is_relative_to(t) for t in targets):
                self._forget(record)
                outcomes.append(FileOutcome(record.path, "removed"))
        return outcomes

    # -- steps ------------------------------------------------------------------------------

    def _chunks(self, job: _Job) -> Iterator[Chunk]:
        sections = loaders.load(job.path, job.result)
        return chunk_sections(sections, self.embedder, self.options.max_tokens, self.options.overlap)

    def _start(self, job: _Job, previous: FileRecord | None) -> None:
        self.collection.put_file(
            FileRecord(job.key, job.path, PENDING, job.content_hash, size=job.size, path_text=job.path_text)
        )
        if previous is not None:  # a new file has no chunks to clear
            if previous.status == INDEXED:  # what did not change keeps its vector
                job.reuse = self.collection.vectors_by_text(job.key)
            known = previous.chunks if previous.status in (INDEXED, FAILED) else None
            self.collection.delete_chunks(job.key, known)
        self.keyword.begin(job.key)

    def _read(self, job: _Job, cancel: CancelToken) -> None:
        """Read and chunk one file into the keyword index, with the chunks' text and metadata."""
        rows: Rows = []
        for chunk in self._chunks(job):
            rows.append(chunk_row(job.key, job.path_text, job.content_hash, chunk))
            if len(rows) >= self.batch_chunks:
                self.keyword.append(job.key, rows)
                job.chunks_read += len(rows)
                rows = []
            if cancel.cancelled:
                return
        self.keyword.append(job.key, rows)
        job.chunks_read += len(rows)

    def _mark_words(self, jobs: list[_Job]) -> None:
        """Tell every view (through the manifest) that these files are searchable by their words."""
        self.collection.put_files([
            FileRecord(job.key, job.path, WORDS, job.content_hash, pages=job.result.pages, size=job.size,
                       warnings=job.result.warnings, path_text=job.path_text, recognized=len(job.result.recognized))
            for job in jobs
        ])
        if jobs:
            self.collection.bump_generation()

    def _commit(self, jobs: list[_Job]) -> list[FileOutcome]:
        outcomes = []
        for job in jobs:
            self.keyword.finish(job.key, job.content_hash)
        self.collection.put_files([
            FileRecord(
                job.key, job.path, INDEXED, job.content_hash, pages=job.result.pages, chunks=job.chunks_written,
                size=job.size, indexed_at=time.time(), warnings=job.result.warnings, path_text=job.path_text,
                recognized=len(job.result.recognized),
            )
            for job in jobs
        ])
        for job in jobs:
            outcomes.append(
                FileOutcome(job.path, INDEXED, chunks=job.chunks_written, pages=job.result.pages, warnings=tuple(job.result.warnings),
                            recognized=len(job.result.recognized), reused=job.chunks_reused)
            )
            job.reuse = {}
        self.collection.bump_generation()
        return outcomes

    def _fail(self, job: _Job, reason: str) -> FileOutcome:
        self.collection.delete_chunks(job.key, None if job.chunks_written else 0)
        self.keyword.remove(job.key)
        self.collection.put_file(
            FileRecord(job.key, job.path, FAILED, job.content_hash, reason=reason, size=job.size,
                       indexed_at=time.time(), warnings=job.result.warnings, path_text=job.path_text)
        )
        self.collection.bump_generation()
        return FileOutcome(job.path, FAILED, reason=reason)

    def _fail_unopened(self, path: Path, key: str, size: int, exc: OSError) -> FileOutcome:
        if isinstance(exc, FileNotFoundError):
            return FileOutcome(path, FAILED, reason="the file does not exist")
        reason = "it is a folder" if isinstance(exc, IsADirectoryError) else f"cannot be read ({exc.strerror or exc})"
        return self._fail(_Job(path, key, path_to_text(path), "", size), reason)

    def _forget(self, record: FileRecord) -> None:
        self.collection.delete_chunks(record.key, record.chunks if record.status in (INDEXED, FAILED) else None)
        self.keyword.remove(record.key)
        self.collection.drop_file(record.key)
        self.collection.bump_generation()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Embedding:
    """The second pass, begun while the first still reads.

    A read file's chunks go, a batch at a time, to the embedder's own thread (of lower
    priority: reading and searches come first); while it encodes one batch, this thread reads
    on or writes the batch before to the store. A file is complete once all its vectors are
    written, and is then committed by the caller. Chunks come back from the keyword index, so
    nothing waits in memory but the batches in flight.
    """

    def __init__(self, ingestor: Ingestor, cancel: CancelToken) -> None:
        self._ingestor = ingestor
        self._cancel = cancel
        self._queue: deque[_Job] = deque()  # read, none of its chunks taken yet
        self._taking: tuple[_Job, Iterator[Rows]] | None = None
        self._batch: list[tuple[_Job, Rows]] = []
        self._running: deque[tuple[Future[np.ndarray] | None, list[tuple[_Job, Rows]]]] = deque()
        self._taken: list[_Job] = []  # every chunk taken, waiting for the last vectors to be written
        self.written = 0  # chunks written to the store in this ingest

    def add(self, job: _Job) -> None:
        self._queue.append(job)

    @property
    def finished(self) -> bool:
        return not (self._queue or self._taking or self._batch or self._running or self._taken)

    def at(self) -> tuple[Path | None, float]:
        """The file being written, and how much of it is."""
        job = self._running[0][1][-1][0] if self._running else self._taking[0] if self._taking else None
        return (job.path, job.chunks_written / max(1, job.chunks_read)) if job else (None, 0.0)

    def advance(self, wait: bool) -> list[_Job]:
        """Hand the embedder batches until it has two, then write the oldest once its vectors
        are done (``wait``: waiting for them; otherwise only if they are). While the first pass
        reads (not ``wait``), only full batches are handed on. Returns the files now complete."""
        while len(self._running) < 2 and self._fill(short=wait):
            texts = [text for job, rows in self._batch for _, text, _ in rows if text not in job.reuse]
            self._running.append((self._ingestor.embedder.submit(texts) if texts else None, self._batch))
            self._batch = []
        if wait and self._running and self._running[0][0] is not None:
            first = self._running[0][0]
            while not first.done() and not self._cancel.cancelled:  # Stop heard within a moment, not a batch
                concurrent.futures.wait([first], timeout=0.2)
        if self._running and (self._running[0][0] is None or self._running[0][0].done()):
            future, batch = self._running.popleft()
            self._write(batch, future.result() if future is not None else None)
        drained = not (self._queue or self._taking or self._batch or self._running)
        complete: list[_Job] = []
        waiting: list[_Job] = []
        for job in self._taken:
            (complete if drained or job.chunks_written >= job.chunks_read else waiting).append(job)
        self._taken = waiting
        return complete

    def _fill(self, short: bool) -> bool:
        """Take chunks of read files until a batch is full; whether there is a batch to hand on."""
        size = self._ingestor.batch_chunks
        while sum(len(rows) for _, rows in self._batch) < size:
            if self._taking is None:
                if not self._queue:
                    return short and bool(self._batch)
                job = self._queue.popleft()
                self._taking = (job, self._ingestor.keyword.held(job.key, size))
            job, rows_left = self._taking
            rows = next(rows_left, None)
            if rows is None:
                self._taken.append(job)
                self._taking = None
            else:
                self._batch.append((job, rows))
        return True

    def _write(self, batch: list[tuple[_Job, Rows]], fresh: np.ndarray | None) -> None:
        """Write a batch's chunks with their vectors (those unchanged since the file's last
        version keep theirs) to the store."""
        vectors_made = iter(fresh if fresh is not None else ())
        for job, rows in batch:
            ids, documents, metadatas = zip(*rows, strict=True)
            reused = sum(1 for text in documents if text in job.reuse)
            vectors = np.stack([job.reuse[text] if text in job.reuse else next(vectors_made) for text in documents])
            self._ingestor.collection.add_chunks(ids, documents, metadatas, vectors)
            job.chunks_written += len(rows)
            job.chunks_reused += reused
            self.written += len(rows)
