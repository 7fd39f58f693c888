"""A cancel flag shared between the thread that asks and the thread that works."""

from __future__ import annotations

import threading


class CancelToken:
    """Set from any thread; long jobs check it between steps (files, batches, tokens)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._event.is_set()

    def reset(self) -> None:
        """Make the token usable for another job."""
        self._event.clear()
