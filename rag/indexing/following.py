"""Collections that follow folders: what changes on disk is indexed while the knowledge base runs.

The followed folders are kept in a small JSON file beside the knowledge base's data. On
start each is indexed again (the manifest's hashes make that cheap: only what changed while
nothing ran is read); then a ``FolderWatcher`` per collection hands over settled changes,
which go through the knowledge base's one indexing route. What happened last is kept
for whoever shows it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.indexing.folder_changes import Changes, FolderWatcher
from rag.indexing.ingest import FileOutcome

log = logging.getLogger(__name__)

Apply = Callable[[str, Changes | None, Sequence[Path]], list[FileOutcome]]


@dataclass(frozen=True, slots=True)
class Followed:
    """The folders one collection follows, and what the last round of changes did: how many
    files it indexed, removed and failed (``changes``), or why it could not run (``error``)."""

    folders: list[Path] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    error: str = ""
    changed_at: float = 0.0


class FollowedFolders:
    """Keeps ``{collection: [folder, ...]}`` in ``path`` and the watchers that serve it.

    ``apply(collection, changes, folders)`` indexes: the changes when given, else the whole
    folders (the catch-up at start). It runs on the watcher's thread.
    """

    def __init__(self, path: Path, apply: Apply) -> None:
        self.path = path
        self._apply = apply
        self._watchers: dict[str, FolderWatcher] = {}
        self._last: dict[str, tuple[dict[str, int], str, float]] = {}
        self._lock = threading.Lock()

    def mapping(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): [str(f) for f in v] for k, v in data.items() if isinstance(v, list)}

    def get(self, collection: str) -> Followed:
        changes, error, when = self._last.get(collection, ({}, "", 0.0))
        return Followed([Path(f) for f in self.mapping().get(collection, [])], changes, error, when)

    def follow(self, collection: str, folder: Path) -> Followed:
        folder = Path(folder).absolute()
        self._edit(collection, lambda folders: folders if str(folder) in folders else [*folders, str(folder)])
        return self.get(collection)

    def unfollow(self, collection: str, folder: Path) -> Followed:
        folder = Path(folder).absolute()
        self._edit(collection, lambda folders: [f for f in folders if f != str(folder)])
        return self.get(collection)

    def forget(self, collection: str) -> None:
        """A deleted collection follows nothing."""
        self._edit(collection, lambda _folders: [])

    def rename(self, old: str, new: str) -> None:
        mapping = self.mapping()
        if old in mapping:
            mapping[new] = mapping.pop(old)
            self._write(mapping)
            self._restart(old)
            self._restart(new)

    def start(self) -> None:
        """Catch up with what changed while nothing ran, then watch (on background threads)."""
        for collection in self.mapping():
            self._restart(collection)

    def stop(self) -> None:
        with self._lock:
            watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.stop()

    def _edit(self, collection: str, change: Callable[[list[str]], list[str]]) -> None:
        mapping = self.mapping()
        mapping[collection] = change(mapping.get(collection, []))
        self._write({k: v for k, v in mapping.items() if v})
        self._restart(collection)

    def _write(self, mapping: dict[str, list[str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(mapping, indent=2, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.path)

    def _restart(self, collection: str) -> None:
        with self._lock:
            old = self._watchers.pop(collection, None)
        if old is not None:
            old.stop()
        present = [Path(f) for f in self.mapping().get(collection, []) if Path(f).is_dir()]
        if not present:
            return
        watcher = FolderWatcher(present, lambda changes: self._round(collection, changes, present))
        with self._lock:
            self._watchers[collection] = watcher
        watcher.start()
        threading.Thread(target=self._round, args=(collection, None, present), name="follow-catch-up", daemon=True).start()

    def _round(self, collection: str, changes: Changes | None, folders: Sequence[Path]) -> None:
        try:
            outcomes = self._apply(collection, changes, folders)
        except Exception as exc:  # noqa: BLE001 - one failed round must not end the watch; it is shown
            log.warning("following folders of %s: %s", collection, exc)
            self._last[collection] = ({}, str(exc), time.time())
            return
        counts: dict[str, int] = {}
        for outcome in outcomes:
            if outcome.status in ("indexed", "removed", "failed"):
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if counts:
            log.info("followed folders of %s: %s", collection, counts)
            self._last[collection] = (counts, "", time.time())
