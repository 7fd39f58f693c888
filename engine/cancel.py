"""A cancel flag shared between the thread that asks and the thread that works."""

from __future__ import annotations

import threading
from collections.abc import Callable


class CancelToken:
    """Set from any thread; long jobs check it between steps (files, batches, tokens)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._watchers: list[Callable[[], None]] = []

    def cancel(self) -> None:
        """Ask the job to stop at its next check, and call whatever ``watch`` registered."""
        with self._lock:
            self._event.set()
            watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher()

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on cancel (at once if already cancelled), for a job blocked in I/O
        that cannot check; returns the function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._watchers.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._watchers:
                self._watchers.remove(callback)

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._event.is_set()

    def reset(self) -> None:
        """Make the token usable for another job."""
        self._event.clear()
