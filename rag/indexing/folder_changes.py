"""Keep a collection in step with folders: what changed on disk, gathered and applied.

``FolderWatcher`` listens to the file system (watchdog) and, once the folders have been
quiet for a moment, hands over one ``Changes``: files added or modified, files removed.
Editors save through temporary files and copies arrive in pieces, so events are gathered
and settled before anything is indexed. ``apply_changes`` then indexes and forgets exactly
those files; a folder moved away counts as every file under it removed.

One idea, one word: a collection *follows* a folder. This module is how a change on disk is
noticed and applied; ``following`` remembers which folders each collection follows (the
window's "Follow a folder"); the CLI's ``sync`` applies a folder's changes once, or with
``--watch`` follows it until Ctrl+C.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.indexing import loaders

if TYPE_CHECKING:
    from engine.cancel import CancelToken
    from rag.indexing.ingest import FileOutcome, IngestReport, ProgressCallback

log = logging.getLogger(__name__)

# How long the folders must stay quiet before the gathered changes are handed over.
SETTLE_SECONDS = 2.0
_TEMPORARY = ("~$", ".~lock.", "#")
_TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", ".swx", "~")


@dataclass(slots=True)
class Changes:
    """Files to (re)index and paths to forget (files, or folders that went away)."""

    changed: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)

    def add(self, path: Path) -> None:
        self.removed.discard(path)
        self.changed.add(path)

    def remove(self, path: Path) -> None:
        self.changed.discard(path)
        self.removed.add(path)


def worth_indexing(path: Path) -> bool:
    """Whether a path seen changing is a document (not hidden, temporary or unsupported)."""
    name = path.name
    if name.startswith(".") or name.startswith(_TEMPORARY) or name.endswith(_TEMPORARY_SUFFIXES):
        return False
    return loaders.is_supported(path)


class Indexes(Protocol):
    """What applying changes needs of a knowledge base (local or remote): index files, forget files."""

    def ingest(self, paths: list[Path], collection: str, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> IngestReport: ...

    def remove(self, paths: list[Path], collection: str) -> list[FileOutcome]: ...


def apply_changes(
    kb: Indexes, collection: str, changes: Changes,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> list[FileOutcome]:
    """Index the changed files and forget the removed ones; the outcomes of both."""
    outcomes: list[FileOutcome] = []
    gone = [p for p in changes.removed if not p.exists()]
    if gone:
        outcomes += kb.remove(gone, collection)
    present = sorted(p for p in changes.changed if p.is_file())
    if present:
        outcomes += kb.ingest(present, collection, progress, cancel).outcomes
    return outcomes


class FolderWatcher:
    """Watches folders recursively; calls ``on_changes`` from its own thread once they settle."""

    def __init__(self, folders: Iterable[Path], on_changes: Callable[[Changes], None],
                 settle: float = SETTLE_SECONDS) -> None:
        self.folders = [Path(f).absolute() for f in folders]
        self._on_changes = on_changes
        self._settle = settle
        self._pending = Changes()
        self._last_event = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._observer = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._record(event)

        self._observer = Observer()
        for folder in self.folders:
            if not folder.is_dir():
                log.warning("not watching %s: no such folder", folder)
                continue
            self._observer.schedule(Handler(), str(folder), recursive=True)
        self._observer.start()
        self._thread = threading.Thread(target=self._deliver, name="folder-watcher", daemon=True)
        self._thread.start()
        log.info("watching %s", ", ".join(str(f) for f in self.folders))

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
        if self._thread is not None:
            self._thread.join(5)

    def _record(self, event) -> None:  # noqa: ANN001 - watchdog's event
        kind = event.event_type
        if kind not in ("created", "modified", "deleted", "moved", "closed"):
            return
        source = Path(_text(event.src_path))
        with self._lock:
            if kind in ("deleted", "moved"):
                self._pending.remove(source)
            if kind == "moved":
                destination = Path(_text(event.dest_path))
                if event.is_directory:
                    self._pending.changed.update(_documents_under(destination))
                elif worth_indexing(destination):
                    self._pending.add(destination)
            elif kind in ("created", "modified", "closed") and not event.is_directory and worth_indexing(source):
                self._pending.add(source)
            elif kind == "created" and event.is_directory:  # a folder copied in whole
                self._pending.changed.update(_documents_under(source))
            self._last_event = time.monotonic()
        self._wake.set()

    def _deliver(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait()
            while not self._stopped.is_set():  # wait until nothing happened for ``settle`` seconds
                with self._lock:
                    quiet = time.monotonic() - self._last_event
                if quiet >= self._settle:
                    break
                time.sleep(self._settle - quiet)
            with self._lock:
                changes, self._pending = self._pending, Changes()
                self._wake.clear()
            if changes and not self._stopped.is_set():
                try:
                    self._on_changes(changes)
                except Exception:  # noqa: BLE001 - one failed round must not end the watch
                    log.exception("applying folder changes failed")


def _documents_under(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file() and worth_indexing(p))


def _text(path: str | bytes) -> str:
    return path.decode() if isinstance(path, bytes) else path
