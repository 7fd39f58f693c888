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

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.cancel import CancelToken
from rag.documents import Chunk, display_path, document_key, path_to_text
from rag.embedding import Embedder
from rag.errors import DocumentError
from rag.indexing import loaders
from rag.indexing.chunking import chunk_sections
from rag.indexing.discovery import content_hash, discover
from rag.indexing.embedding_pass import EmbeddingPass, FileJob, Rows
from rag.storage.collection import StoredCollection, chunk_row
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import FAILED, INDEXED, PENDING, WORDS, FileRecord

log = logging.getLogger(__name__)

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


class Ingestor:
    """Runs ingests into one collection with one embedder; plain synchronous code.

    An ingest has two passes. The first reads every file and writes its chunks to the
    keyword index, text included: each file is searchable by its words as soon as it is
    read. The second embeds those chunks, taking them back from the keyword index (so
    nothing waits in memory), and commits each file once its vectors are in the store; it
    begins while the first still reads, on the embedder's own thread (``EmbeddingPass``).
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
        return _Run(self, progress, cancel or CancelToken()).run(paths, force)

    def remove(self, paths: Iterable[Path]) -> list[FileOutcome]:
        """Forget files (or every file under a folder) whether or not they still exist on disk.

        A file is found by its own manifest row; a folder's files only among every row, read
        whole when a folder (or a path the manifest holds no file at) is given."""
        targets = [Path(os.path.abspath(p)) for p in paths]
        manifest = self.collection.files_by_key([document_key(t) for t in targets])
        named = {record.path for record in manifest.values()}
        if any(os.path.isdir(t) or t not in named for t in targets):
            # A folder, or a path the manifest holds no file at (a folder once, perhaps, gone from
            # disk or a file now): the files under it are found among every row.
            manifest = self.collection.files()
        outcomes = []
        for record in manifest.values():
            if any(record.path == t or record.path.is_relative_to(t) for t in targets):
                self._forget(record)
                outcomes.append(FileOutcome(record.path, "removed"))
        return outcomes

    # -- steps ------------------------------------------------------------------------------

    def _chunks(self, job: FileJob) -> Iterator[Chunk]:
        sections = loaders.load(job.path, job.result)
        return chunk_sections(sections, self.embedder, self.options.max_tokens, self.options.overlap)

    def _start(self, job: FileJob, previous: FileRecord | None) -> None:
        self.collection.put_file(
            FileRecord(job.key, job.path, PENDING, job.content_hash, size=job.size, path_text=job.path_text)
        )
        if previous is not None:  # a new file has no chunks to clear
            if previous.status == INDEXED:  # what did not change keeps its vector
                job.reuse = self.collection.vectors_by_text(job.key)
            known = previous.chunks if previous.status in (INDEXED, FAILED) else None
            self.collection.delete_chunks(job.key, known)
        self.keyword.begin(job.key)

    def _read(self, job: FileJob, cancel: CancelToken) -> None:
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

    def _mark_words(self, jobs: list[FileJob]) -> None:
        """Tell every view (through the manifest) that these files are searchable by their words."""
        self.collection.put_files([
            FileRecord(job.key, job.path, WORDS, job.content_hash, pages=job.result.pages, size=job.size,
                       warnings=job.result.warnings, path_text=job.path_text, recognized=len(job.result.recognized))
            for job in jobs
        ])
        if jobs:
            self.collection.bump_generation()

    def _commit(self, jobs: list[FileJob]) -> list[FileOutcome]:
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

    def _fail(self, job: FileJob, reason: str) -> FileOutcome:
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
        return self._fail(FileJob(path, key, path_to_text(path), "", size), reason)

    def _forget(self, record: FileRecord) -> None:
        self.collection.delete_chunks(record.key, record.chunks if record.status in (INDEXED, FAILED) else None)
        self.keyword.remove(record.key)
        self.collection.drop_file(record.key)
        self.collection.bump_generation()


class _Run:
    """One ingest, its two passes and its progress (see ``Ingestor``)."""

    def __init__(self, ingestor: Ingestor, progress: ProgressCallback | None, cancel: CancelToken) -> None:
        self.ingestor, self.progress, self.cancel = ingestor, progress, cancel
        self.started = time.perf_counter()
        self.report = IngestReport()
        self.state = IngestProgress(files_total=0)
        self.removed = 0  # outcomes of files gone from disk, which are not files done
        self.embedding = EmbeddingPass(ingestor.collection, ingestor.keyword, ingestor.embedder,
                                       ingestor.batch_chunks, cancel)
        self.unmarked: list[FileJob] = []  # searchable by words, not yet marked so in the manifest
        self.marked_at = time.monotonic()

    def run(self, paths: Iterable[Path], force: bool) -> IngestReport:
        ingestor, report = self.ingestor, self.report
        files, folders, report.skipped = discover(paths, ingestor.confine)
        manifest = _manifest(ingestor.collection, files, folders)
        listed = set(files)
        for record in manifest.values():
            if record.status in (PENDING, WORDS) and record.path not in listed and record.path.exists():
                files.append(record.path)  # finish what a killed run started
                listed.add(record.path)
        for record in manifest.values():
            if not record.path.exists() and (record.status in (PENDING, WORDS)
                                             or any(record.path.is_relative_to(f) for f in folders)):
                ingestor._forget(record)
                report.outcomes.append(FileOutcome(record.path, "removed"))
                self.removed += 1
        ingestor.keyword.drop_unfinished()

        sizes = {f: _size(f) for f in files}
        self.state = IngestProgress(files_total=len(files), bytes_total=sum(sizes.values()))
        self.tell()
        for position, path in enumerate(files):  # the first pass: read, and make searchable by words
            if self.cancel.cancelled:
                break
            self.state.files_read = position
            self.read(path, sizes[path], manifest.get(document_key(path)), force)
        ingestor._mark_words(self.unmarked)
        self.state.files_read = len(files)

        self.state.embedding = True  # the second pass: what is left to embed, each file committed once its vectors are in
        self.tell(*self.embedding.at())
        while not self.cancel.cancelled:
            self.commit(self.embedding.advance(wait=True))
            if self.embedding.finished:
                break
            self.tell(*self.embedding.at())
        # Stopped, the batches still being embedded are let go: their files stay searchable by
        # words and are finished by the next ingest. Every file whose vectors are in is committed.
        report.cancelled = self.cancel.cancelled
        self.tell()
        report.seconds = time.perf_counter() - self.started
        return report

    def read(self, path: Path, size: int, record: FileRecord | None, force: bool) -> None:
        """The first pass for one file: skipped if unchanged, else read into the keyword index
        and handed to the embedding pass; a file that cannot be read fails alone."""
        ingestor, cancel = self.ingestor, self.cancel
        key = document_key(path)
        self.tell(path)
        try:
            digest = content_hash(path, cancel)
        except OSError as exc:
            self.done([ingestor._fail_unopened(path, key, size, exc)], 0)
            return
        if not force and record and record.status == INDEXED and record.content_hash == digest:
            self.done([FileOutcome(path, "unchanged", chunks=record.chunks, pages=record.pages)], size)
            return
        job = FileJob(path, key, path_to_text(path), digest, size)
        job.result.recognize = ingestor.options.recognize_text
        job.result.cancel = cancel
        job.result.page_done = lambda page: self.tell(job.path, page / max(1, job.result.pages))
        ingestor._start(job, record)
        try:
            ingestor._read(job, cancel)
        except DocumentError as exc:
            self.done([ingestor._fail(job, exc.reason)], job.size)
            return
        except (UnicodeError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, MemoryError) as exc:
            # A parser choking on a strange file: record it and go on with the rest.
            log.exception("unexpected error reading %s", display_path(path))
            self.done([ingestor._fail(job, f"could not be read ({type(exc).__name__}: {exc})")], job.size)
            return
        if cancel.cancelled:
            return
        ingestor.keyword.words(job.key, job.content_hash)
        self.unmarked.append(job)
        self.state.files_searchable += 1
        if len(self.unmarked) >= 64 or time.monotonic() - self.marked_at > 1.0:
            ingestor._mark_words(self.unmarked)
            self.unmarked = []
            self.marked_at = time.monotonic()
        self.embedding.add(job)
        self.commit(self.embedding.advance(wait=False))  # the embedder works on what is read meanwhile
        self.tell(path, 1.0)

    def commit(self, jobs: list[FileJob]) -> None:
        if jobs:
            # "indexed" supersedes "words": a file not yet marked must not be marked after this.
            self.unmarked = [job for job in self.unmarked if not any(job is c for c in jobs)]
            self.done(self.ingestor._commit(jobs), sum(j.size for j in jobs))
        self.state.chunks_done = self.embedding.written

    def done(self, outcomes: Iterable[FileOutcome], size: int) -> None:
        self.report.outcomes.extend(outcomes)
        self.state.files_done = len(self.report.outcomes) - self.removed
        self.state.bytes_done += size

    def tell(self, current: Path | None = None, fraction: float = 0.0) -> None:
        if self.progress is not None:
            self.state.current, self.state.current_fraction = current, fraction
            self.progress(self.state)


def _manifest(collection: StoredCollection, files: list[Path], folders: list[Path]) -> dict[str, FileRecord]:
    """The manifest rows an ingest of ``files`` (found in ``folders``) acts on: the files' own,
    and every unfinished file's (finished, or forgotten when gone). Files vanished from a folder
    are found only among every row, read whole when a folder is given (its files are all read
    anyway); files alone cost the same in a manifest of any size."""
    if folders:
        return collection.files()
    manifest = collection.unfinished_files()
    manifest.update(collection.files_by_key([document_key(f) for f in files]))
    return manifest


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
