"""Collections that follow folders: what changes on disk is indexed while the app runs.

On start, each followed folder is indexed again (the manifest's hashes make that cheap:
only what changed while the app was closed is read); then a ``FolderWatcher`` per folder
hands over settled changes, which are applied on the indexing thread one set at a time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.backend import Backend
from rag.watch import Changes, FolderWatcher, apply_changes

log = logging.getLogger(__name__)


class FollowedFolders(QObject):
    """Keeps ``settings.watched_folders`` ({collection: [folder, ...]}) in step."""

    changed = Signal(str, str)  # collection, what changed in words
    _arrived = Signal(str, object)  # from a watcher's thread to the window's

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self._watchers: list[FolderWatcher] = []
        self._arrived.connect(self._apply)

    def folders(self, collection: str) -> list[Path]:
        return [Path(f) for f in self.backend.settings.watched_folders.get(collection, [])]

    def start(self) -> None:
        """Catch up with what changed while closed, then watch."""
        self.stop()
        for collection, folders in self.backend.settings.watched_folders.items():
            present = [Path(f) for f in folders if Path(f).is_dir()]
            if not present:
                continue
            job = self.backend.run("ingest", "catch up", lambda job, c=collection, p=present: self.backend.kb.ingest(
                p, c, progress=job.report, cancel=job.cancel))
            job.done.connect(lambda report, c=collection: self._report(c, report.outcomes))
            job.failed.connect(lambda error, c=collection: self.changed.emit(c, str(error)))
            watcher = FolderWatcher(present, lambda changes, c=collection: self._arrived.emit(c, changes))
            watcher.start()
            self._watchers.append(watcher)

    def stop(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self._watchers = []

    def follow(self, collection: str, folder: Path) -> None:
        self._edit(collection, lambda folders: [*folders, str(folder)] if str(folder) not in folders else folders)

    def unfollow(self, collection: str, folder: Path) -> None:
        self._edit(collection, lambda folders: [f for f in folders if f != str(folder)])

    def _edit(self, collection: str, change: Any) -> None:
        settings = self.backend.settings
        mapping = {k: list(v) for k, v in settings.watched_folders.items()}
        mapping[collection] = change(mapping.get(collection, []))
        settings.watched_folders = {k: v for k, v in mapping.items() if v}
        settings.save()
        self.start()

    def _apply(self, collection: str, changes: Changes) -> None:
        if self.backend.kb is None:
            return
        job = self.backend.run("ingest", "follow folders", lambda job: apply_changes(
            self.backend.kb, collection, changes, job.report, job.cancel))
        job.done.connect(lambda outcomes: self._report(collection, outcomes))
        job.failed.connect(lambda error: self.changed.emit(collection, str(error)))

    def _report(self, collection: str, outcomes: list[Any]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if not any(counts.get(s) for s in ("indexed", "removed", "failed")):
            return
        names = {"indexed": self.tr("indexed"), "removed": self.tr("removed"), "failed": self.tr("failed")}
        words = ", ".join(f"{counts[s]} {names[s]}" for s in names if counts.get(s))
        log.info("followed folders of %s: %s", collection, words)
        self.changed.emit(collection, self.tr("{}: {}").format(time.strftime("%H:%M"), words))
