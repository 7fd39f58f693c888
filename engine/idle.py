"""Free a model's memory after it has sat unused for a while.

The clock is injected, so tests move time forward instead of sleeping; a daemon thread
calls ``check`` periodically in the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class IdleTimer:
    """Calls ``on_idle`` once ``seconds`` pass with no ``touch`` and nothing ``busy``."""

    def __init__(self, seconds: float, on_idle: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._on_idle = on_idle
        self._clock = clock
        self._last = clock()
        self._busy = 0
        self._armed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self) -> None:
        """Record use now; the countdown starts again."""
        with self._lock:
            self._last = self._clock()
            self._armed = True

    @contextmanager
    def busy(self) -> Iterator[None]:
        """While inside, the idle callback never fires (a generation is running)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._last = self._clock()
                self._armed = True

    def check(self) -> bool:
        """Fire ``on_idle`` if the time has come; returns whether it fired."""
        with self._lock:
            due = self._armed and not self._busy and self.seconds > 0 and self._clock() - self._last >= self.seconds
            if due:
                self._armed = False
        if due:
            self._on_idle()
        return due

    def start(self, interval: float | None = None) -> None:
        """Check in a daemon thread every ``interval`` seconds (default: a quarter of the idle time)."""
        if self._thread is not None:
            return
        period = interval or max(1.0, min(30.0, self.seconds / 4))

        def run() -> None:
            while not self._stop.wait(period):
                self.check()

        self._thread = threading.Thread(target=run, name="idle-timer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the checking thread."""
        self._stop.set()
