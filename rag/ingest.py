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

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.cancel import CancelToken
from rag import loaders
from rag.chunking import chunk_sections
from rag.documents import Chunk, LoadResult, display_path, document_key, path_to_text
from rag.embedding import Embedder
from rag.errors import DocumentError
from rag.keyword import KeywordIndex
from rag.store import FAILED, INDEXED, PENDING, WORDS, FileRecord, StoredCollection, chunk_row

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
    files_searchable: int = 0  # read, and searchable by their words (their vectors may still be coming)
    embedding: bool = False  # the second pass: every file is read, vectors are being made
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


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path], int]:
    """Expand folders (recursively, hidden entries skipped) into files.

    Returns ``(files, folders, skipped)``: files named directly are kept whatever their
    type, so an unsupported one is reported; files found in folders are kept only when a
    loader exists for them, the rest counted as skipped.
    """
    files: list[Path] = []
    folders: list[Path] = []
    skipped = 0
    seen: set[Path] = set()
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            folders.append(path)
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    file = Path(root) / name
                    if not loaders.is_supported(file):
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
    nothing waits in memory), and commits each file once its vectors are in the store.
    """

    def __init__(
        self,
        collection: StoredCollection,
        keyword: KeywordIndex,
        embedder: Embedder,
        options: ChunkOptions = ChunkOptions(),
        batch_chunks: int = 256,
    ) -> None:
        self.collection = collection
        self.keyword = keyword
        self.embedder = embedder
        self.options = options
        self.batch_chunks = batch_chunks

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
        files, folders, skipped = discover(paths)
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
            state.chunks_done = sum(o.chunks for o in report.outcomes if o.status == INDEXED)

        tell()
        read: list[_Job] = []
        unmarked: list[_Job] = []
        marked_at = time.monotonic()
        for path in files:  # the first pass: read, and make searchable by words
            if cancel.cancelled:
                break
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
            read.append(job)
            unmarked.append(job)
            state.files_searchable += 1
            if len(unmarked) >= 64 or time.monotonic() - marked_at > 1.0:
                self._mark_words(unmarked)
                unmarked, marked_at = [], time.monotonic()
            tell(path, 1.0)
        self._mark_words(unmarked)

        waiting: list[_Job] = []  # the second pass: embed, and commit each file whose vectors are all in
        buffered: list[tuple[_Job, Rows]] = []
        state.embedding = True
        for job in read:
            if cancel.cancelled:
                break
            tell(job.path)
            for rows in self.keyword.held(job.key, self.batch_chunks):
                buffered.append((job, rows))
                if sum(len(r) for _, r in buffered) >= self.batch_chunks:
                    self._embed(buffered)
                    buffered = []
                    state.chunks_done = sum(o.chunks for o in report.outcomes if o.status == INDEXED) + sum(
                        j.chunks_written for j in [*waiting, job])
                    tell(job.path, job.chunks_written / max(1, job.chunks_read))
                if cancel.cancelled:
                    break
            if cancel.cancelled:
                if job.chunks_written == job.chunks_read:
                    waiting.append(job)  # stopped just as its last vectors went in
                break
            waiting.append(job)
            if sum(len(r) for _, r in buffered) >= self.batch_chunks or len(waiting) >= 64:
                self._embed(buffered)
                buffered = []
                done(self._commit(waiting), sum(j.size for j in waiting))
                waiting = []
                tell()
        if not cancel.cancelled:
            self._embed(buffered)
            buffered = []
        # Stopped or not, a file whose vectors are all in the store is committed, not redone.
        unembedded = {id(job) for job, _ in buffered}
        finished = [job for job in waiting if id(job) not in unembedded]
        if finished:
            done(self._commit(finished), sum(j.size for j in finished))
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

    def _embed(self, buffered: list[tuple[_Job, Rows]]) -> None:
        """Embed the buffered rows together (those unchanged since the file's last version keep
        their vectors) and write them, with their vectors, to the store."""
        if not buffered:
            return
        fresh = iter(self.embedder.embed([text for job, rows in buffered for _, text, _ in rows if text not in job.reuse], bulk=True))
        for job, rows in buffered:
            ids, documents, metadatas = zip(*rows, strict=True)
            reused = sum(1 for text in documents if text in job.reuse)
            vectors = np.stack([job.reuse[text] if text in job.reuse else next(fresh) for text in documents])
            self.collection.add_chunks(ids, documents, metadatas, vectors)
            job.chunks_written += len(rows)
            job.chunks_reused += reused

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
