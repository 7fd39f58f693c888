"""A circuit breaker for a dependency that can hang or go away (the shared Redis, and in the same way
PostgreSQL or a Chroma server): after its first timeout or refused connection, calls skip it at once
instead of each waiting out a socket timeout, and a thread in the background tries it again until it
answers.

Each call names what to do instead: for a dependency the work can go on without (the answer cache),
a miss; for one it cannot (the store, through ``Breaker.guard``), raise the error that says so
(``StoreUnavailable``), at once rather than after a timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Breaker:
    """Runs calls to ``name`` until one fails with one of ``failures``; then opens: calls run their
    fallback at once, and ``probe`` runs every ``retry_every`` seconds in the background until it
    succeeds, which closes the breaker again. Opening and closing are logged once each."""

    def __init__(self, name: str, probe: Callable[[], object], failures: tuple[type[BaseException], ...],
                 retry_every: float = 2.0) -> None:
        self.name = name
        self.failures = failures
        self.retry_every = retry_every
        self.opened = 0  # times the breaker opened
        self.attempts = 0  # calls that went to the dependency
        self.skipped = 0  # calls that ran their fallback at once, the breaker being open
        self._probe = probe
        self._open = False
        self._lock = threading.Lock()  # guards the state, never held while the dependency is called
        self._stop = threading.Event()

    @property
    def is_open(self) -> bool:
        """Whether calls skip the dependency now."""
        return self._open

    def call(self, action: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``action()``; ``fallback()`` instead when the breaker is open, or when ``action`` fails as the
        dependency does when it hangs or is down (which opens the breaker)."""
        if not self._admit():
            return fallback()
        try:
            return action()
        except self.failures as exc:
            self._trip(exc)
        return fallback()

    @contextmanager
    def guard(self, error: Callable[[], Exception]) -> Iterator[None]:
        """``call`` for a block that cannot go on without the dependency: raises ``error()`` instead of
        running it when the breaker is open, or when it fails as the dependency does when it hangs or is
        down (which opens the breaker)."""
        if not self._admit():
            raise error()
        try:
            yield
        except self.failures as exc:
            self._trip(exc)
            raise error() from exc

    def _admit(self) -> bool:
        """Whether a call goes to the dependency now (counted as an attempt) or is skipped (counted so)."""
        with self._lock:
            if self._open:
                self.skipped += 1
                return False
            self.attempts += 1
            return True

    def _trip(self, exc: BaseException) -> None:
        with self._lock:
            if self._open or self._stop.is_set():  # calls that were already waiting when it opened
                return
            self._open = True
            self.opened += 1
        log.warning("%s did not answer (%s); skipping it, and trying it again every %g s",
                    self.name, exc, self.retry_every)
        threading.Thread(target=self._retry, name=f"breaker {self.name}", daemon=True).start()

    def _retry(self) -> None:
        while not self._stop.wait(self.retry_every):
            try:
                self._probe()
            except self.failures:
                continue
            with self._lock:
                self._open = False
            log.warning("%s answers again", self.name)
            return

    def close(self) -> None:
        """Stop trying in the background (the dependency is no longer used)."""
        self._stop.set()
