"""Collections that follow folders: what changes on disk is indexed while the knowledge base runs.

The followed folders are kept in a small JSON file beside the knowledge base's data
(``FollowFile``), or in a team server's shared database (``server.collection_state``). While
watching (from ``start`` to ``stop``: on a team server, the one replica that holds the lease),
each is indexed again first (the manifest's hashes make that cheap: only what changed while
nothing ran is read); then a ``FolderWatcher`` per collection hands over settled changes,
which go through the knowledge base's one indexing route. The list is read again every few
seconds, so a folder followed through another replica is watched here too. What happened last
is kept for whoever shows it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
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


class FollowList(ABC):
    """Which folders each collection follows: ``{collection name: [absolute folder, ...]}``."""

    @abstractmethod
    def mapping(self) -> dict[str, list[str]]:
        """Every collection's followed folders (none: absent), each list in the order followed."""

    @abstractmethod
    def add(self, collection: str, folder: str) -> None: ...

    @abstractmethod
    def discard(self, collection: str, folder: str) -> None: ...

    @abstractmethod
    def forget(self, collection: str) -> None: ...

    @abstractmethod
    def rename(self, old: str, new: str) -> None: ...


class FollowFile(FollowList):
    """The list in one JSON file, rewritten whole (a temporary file renamed over it) at each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def mapping(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): [str(f) for f in v] for k, v in data.items() if isinstance(v, list) and v}

    def add(self, collection: str, folder: str) -> None:
        self._edit(lambda m: m | {collection: [*(f for f in m.get(collection, []) if f != folder), folder]})

    def discard(self, collection: str, folder: str) -> None:
        self._edit(lambda m: m | {collection: [f for f in m.get(collection, []) if f != folder]})

    def forget(self, collection: str) -> None:
        self._edit(lambda m: {k: v for k, v in m.items() if k != collection})

    def rename(self, old: str, new: str) -> None:
        self._edit(lambda m: {new if k == old else k: v for k, v in m.items()} if old in m else m)

    def _edit(self, change: Callable[[dict[str, list[str]]], dict[str, list[str]]]) -> None:
        with self._lock:
            mapping = {k: v for k, v in change(self.mapping()).items() if v}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(mapping, indent=2, ensure_ascii=False), encoding="utf-8")
            temporary.replace(self.path)


class FollowedFolders:
    """The followed folders of ``kept`` and, while watching, the watchers that serve them.

    ``apply(collection, changes, folders)`` indexes: the changes when given, else the whole
    folders (the catch-up when a watch starts). It runs on the watcher's thread. ``reread``:
    how often, in seconds, the list is read again while watching, for changes made elsewhere.
    """

    def __init__(self, kept: FollowList, apply: Apply, reread: float = 5.0) -> None:
        self.kept = kept
        self._apply = apply
        self._reread = reread
        self._watchers: dict[str, tuple[list[Path], FolderWatcher]] = {}
        self._last: dict[str, tuple[dict[str, int], str, float]] = {}
        self._lock = threading.RLock()
        self._watching: threading.Event | None = None  # set when watching stops

    def mapping(self) -> dict[str, list[str]]:
        return self.kept.mapping()

    def get(self, collection: str) -> Followed:
        changes, error, when = self._last.get(collection, ({}, "", 0.0))
        return Followed([Path(f) for f in self.mapping().get(collection, [])], changes, error, when)

    def follow(self, collection: str, folder: Path) -> Followed:
        self.kept.add(collection, str(Path(folder).absolute()))
        self._refresh()
        return self.get(collection)

    def unfollow(self, collection: str, folder: Path) -> Followed:
        self.kept.discard(collection, str(Path(folder).absolute()))
        self._refresh()
        return self.get(collection)

    def forget(self, collection: str) -> None:
        """A deleted collection follows nothing."""
        self.kept.forget(collection)
        self._refresh()

    def rename(self, old: str, new: str) -> None:
        self.kept.rename(old, new)
        self._refresh()

    def start(self) -> None:
        """Catch up with what changed while nothing watched, then watch (on background threads)."""
        with self._lock:
            if self._watching is not None:
                return
            self._watching = stopped = threading.Event()
        # The first round too on the thread that reads again: a list that cannot be read now (a
        # database not answering) is read at the next round, not never.
        threading.Thread(target=self._rereading, args=(stopped,), name="follow-reread", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._watching is not None:
                self._watching.set()
            self._watching = None
            watchers, self._watchers = [w for _, w in self._watchers.values()], {}
        for watcher in watchers:
            watcher.stop()

    def _rereading(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            try:
                self._refresh()
            except Exception as exc:  # noqa: BLE001 - a list that cannot be read now may be read at the next round
                log.warning("reading the followed folders: %s", exc)
            stopped.wait(self._reread)

    def _refresh(self) -> None:
        """While watching, watch what the list holds now: a watcher for each collection whose
        folders changed (with its catch-up), none for one that follows nothing any more."""
        with self._lock:
            if self._watching is None:
                return
            wanted = {c: [Path(f) for f in folders if Path(f).is_dir()] for c, folders in self.mapping().items()}
            for collection in set(self._watchers) | set(wanted):
                folders = wanted.get(collection, [])
                if collection in self._watchers and self._watchers[collection][0] == folders:
                    continue
                if collection in self._watchers:
                    self._watchers.pop(collection)[1].stop()
                if folders:
                    self._watch(collection, folders)

    def _watch(self, collection: str, folders: list[Path]) -> None:
        watcher = FolderWatcher(folders, lambda changes: self._round(collection, changes, folders))
        self._watchers[collection] = (folders, watcher)
        watcher.start()
        threading.Thread(target=self._round, args=(collection, None, folders), name="follow-catch-up", daemon=True).start()

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
