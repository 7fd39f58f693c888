"""Long work off the GUI thread: a job is a plain function run on a thread pool, talking back
through Qt signals (progress, partial results, done, failed) and checking a cancel token.

The shape follows superqt's thread workers and Orange's ``concurrent`` helpers: the function
receives the ``Job``, calls ``job.report(...)``/``job.emit(...)`` and checks
``job.cancel.cancelled``; the GUI connects to the signals, which arrive on its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QDeadlineTimer, QObject, QRunnable, QThread, QThreadPool, QTimer, Signal, SignalInstance

from rag import ArchivistError, CancelToken

log = logging.getLogger(__name__)


class Job(QObject):
    """One unit of background work and its signals."""

    progress = Signal(object)
    partial = Signal(object)
    done = Signal(object)
    failed = Signal(object)

    def __init__(self, name: str, fn: Callable[[Job], Any]) -> None:
        super().__init__()
        self.name = name
        self.cancel = CancelToken()
        self._fn = fn
        self.running = False
        self.silenced = False

    def report(self, value: object) -> None:
        """Send progress to the GUI (any thread)."""
        if not self.silenced:
            self.progress.emit(value)

    def emit(self, value: object) -> None:
        """Send a partial result to the GUI (any thread)."""
        if not self.silenced:
            self.partial.emit(value)

    def stop(self) -> None:
        """Ask the job to stop at its next check."""
        self.cancel.cancel()

    def silence(self) -> None:
        """Stop the job and let it say nothing more: the window is closing, and a signal sent from a
        worker while Python and Qt tear down is how an app dies on quitting (``bool_dealloc``)."""
        self.silenced = True
        self.stop()

    def _run(self) -> None:
        if self.silenced:
            return
        _yield_to_the_window()
        self.running = True
        try:
            result = self._fn(self)
        except ArchivistError as exc:
            self._end(self.failed, exc)
        except Exception as exc:  # a bug in a job must reach the window, not vanish in a thread
            if not self.silenced:
                log.exception("job %s crashed", self.name)
            self._end(self.failed, exc)
        else:
            self._end(self.done, result)
        finally:
            self.running = False

    def _end(self, signal: SignalInstance, value: object) -> None:
        if not self.silenced:
            signal.emit(value)


def _yield_to_the_window() -> None:
    """Run workers at a lower priority than the window's thread.

    On two cores, the embedder's threads, llama.cpp's and the store's server can keep both
    busy; the window must still get the processor when it needs it. Threads the worker
    starts (PyTorch's, llama.cpp's) inherit the lower priority.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self) -> None:
        self.job._run()


class Workers:
    """Thread pools by kind of work: the model is single-threaded, so is ingestion; the rest share two."""

    def __init__(self) -> None:
        self._pools = {"model": QThreadPool(), "ingest": QThreadPool(), "io": QThreadPool()}
        self._pools["model"].setMaxThreadCount(1)
        self._pools["ingest"].setMaxThreadCount(1)
        self._pools["io"].setMaxThreadCount(2)
        for pool in self._pools.values():
            pool.setThreadPriority(QThread.Priority.LowPriority)  # what Qt offers beyond Linux
        self._live: set[Job] = set()
        self.closed = False

    def start(self, pool: str, name: str, fn: Callable[[Job], Any]) -> Job:
        """Run ``fn`` on ``pool``; the returned job's signals report back.

        The job starts once control returns to the event loop, so the caller has connected
        its signals by then: a quick job could otherwise finish before anyone listens.
        """
        job = Job(name, fn)
        if self.closed:  # after shutdown nothing starts: the job stays silent
            job.silence()
            return job
        self._live.add(job)  # keep the QObject alive until its last signal
        job.done.connect(lambda _r, j=job: self._live.discard(j))
        job.failed.connect(lambda _e, j=job: self._live.discard(j))
        runnable = _Runnable(job)
        QTimer.singleShot(0, lambda: None if self.closed else self._pools[pool].start(runnable))
        return job

    def busy(self) -> bool:
        return any(p.activeThreadCount() for p in self._pools.values())

    def silence(self) -> None:
        """Stop every job and let none of them send anything more; start none from now on."""
        self.closed = True
        for job in list(self._live):
            job.silence()
        for pool in self._pools.values():
            pool.clear()  # those not started yet never will be

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Silence every job and wait for the threads (all pools within ``timeout_ms`` together);
        whether they all ended."""
        self.silence()
        deadline = QDeadlineTimer(timeout_ms)
        waited = [pool.waitForDone(deadline) for pool in self._pools.values()]  # each pool, not the first alone
        ended = all(waited)
        if not ended:
            log.warning("jobs still running at shutdown: %s", sorted(j.name for j in self._live if j.running))
        return ended
