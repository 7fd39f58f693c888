"""The window's one door to the knowledge base, which runs in a process of its own (or is the
team's server, over HTTP).

The backend starts the knowledge-base process, reaches it through a ``KnowledgeBaseClient``,
and runs every call as a background job, so the window never waits. What changes there
arrives as signals: the model's state, a change anyone made to the library (this window,
``archivist-cli``, a followed folder, a teammate), the process stopping and starting again.

A team's server pushes what changes (``/v1/events``, through ``KnowledgeBaseClient.listen``): the
window asks for the library's revision when an event says so, and looks by itself only once a
minute, in case the stream cannot open. Where nothing is pushed (this computer's own knowledge-base
process), it looks every 2 seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from archivist import KnowledgeBaseProcess, Settings, TeamConnection, connect
from desktop.workers import Job, Workers
from rag import AccessDenied, KnowledgeBaseClient, ModelStatus, ServiceStopped

log = logging.getLogger(__name__)

T = TypeVar("T")
_POLL_MS = 2000  # how often the window looks for changes other clients made
_PUSHED_POLL_MS = 60_000  # where the knowledge base says what changes: in case its event stream is down


class Backend(QObject):
    """Owns the knowledge-base process and the settings; runs calls on ``Workers``."""

    ready = Signal()
    failed = Signal(object)
    stopped = Signal(object)  # the knowledge-base process died (a ServiceStopped); it restarts by itself
    model_status = Signal(object)
    changed = Signal()  # something shown changed: refresh the library and the conversations
    polled = Signal()  # a poll went by: a moment to refresh what changes by itself (idle unloads, cache counts)
    _notice = Signal(object)  # from the pipe's thread to the window's
    _server_event = Signal(str, str)  # (kind, collection) from the event stream's thread to the window's

    def __init__(self, settings: Settings, workers: Workers | None = None,
                 process: KnowledgeBaseProcess | TeamConnection | None = None) -> None:
        """``process``: one already started (the app starts it first thing, before Qt's imports)."""
        super().__init__()
        self.settings = settings
        self.workers = workers or Workers()
        self.closed = False
        self._notice.connect(self._on_notice)
        self._server_event.connect(self._on_server_event)
        self._stop_events: Callable[[], None] | None = None
        self._use(process or connect(settings))
        self.kb: KnowledgeBaseClient | None = None
        self.collection = settings.collection
        self._revision = ""
        self._polling = False
        self._look_again = False  # an event came while a look was under way: look once more after it
        self._poll = QTimer(self)
        self._poll.setInterval(_POLL_MS)
        self._poll.timeout.connect(self._look_for_changes)

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> Job:
        """Start the knowledge-base process (unless it runs already); ``ready`` or ``failed`` follows."""
        if self.closed:
            return self.workers.start("io", "open knowledge base", lambda _job: None)  # silent: nothing starts
        if not self.process.running:
            self.process.start()
        client = KnowledgeBaseClient(self.process)

        team = self.team

        def first_look(_job: Job) -> str:
            names = [c.name for c in client.collections()]
            if self.collection not in names:
                if names:
                    return names[0]
                if team:
                    raise AccessDenied("you have no collection on the team server yet; ask its administrator "
                                       "to give you one.")
                client.create_collection(self.collection)
            return self.collection

        job = self.workers.start("io", "open knowledge base", first_look)
        job.done.connect(lambda collection: self._opened(client, collection))
        job.failed.connect(self.failed.emit)
        return job

    def _opened(self, client: KnowledgeBaseClient, collection: str) -> None:
        self.kb = client
        self.collection = collection
        self._revision = ""
        self._stop_events = client.listen(self._hear_server)
        self._poll.start(_POLL_MS if self._stop_events is None else _PUSHED_POLL_MS)
        self.ready.emit()
        self.call("io", "model status", lambda kb, _job: kb.model_status()).done.connect(
            lambda status: status is not None and self.model_status.emit(status))

    def reopen(self, settings: Settings) -> Job:
        """Apply new settings: end the knowledge-base process (off the window's thread: it may take
        seconds to close its store and model) and start one with them."""
        self._poll.stop()
        self._stop_listening()
        self.kb = None
        self.settings = settings
        self.collection = settings.collection
        job = self.workers.start("io", "close the knowledge base", lambda _job: self.process.close())
        job.done.connect(lambda _r: (self._use(connect(settings)), self.open()))
        return job

    def _use(self, process: KnowledgeBaseProcess | TeamConnection) -> None:
        self.process = process
        process.add_listener(self._hear)

    def _hear(self, notice: object) -> None:
        """A notice from the pipe's thread, passed to the window's; none once shut down."""
        if not self.closed:
            self._notice.emit(notice)

    @property
    def team(self) -> bool:
        """Whether the knowledge base is a team's server (not this computer's)."""
        return isinstance(self.process, TeamConnection)

    def shutdown(self) -> None:
        """End it all, in the order that lets nothing speak afterwards: no more polls or notices, every
        job silenced, then the process closed (which fails the calls still waiting on it, so their
        threads end), then the threads waited for. Calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        self._poll.stop()
        self._stop_listening()
        self.kb = None
        self.workers.silence()
        self.process.close()
        self.workers.shutdown()

    def _on_notice(self, notice: object) -> None:
        if self.closed:
            return
        if isinstance(notice, ModelStatus):
            self.model_status.emit(notice)
        elif isinstance(notice, ServiceStopped) and self.kb is not None:
            # (Had it died while opening, the open job would say so: no restarting in a loop.)
            self._poll.stop()
            self._stop_listening()
            self.kb = None
            self.stopped.emit(notice)
            self.process.close()
            self.open()

    # -- calls --------------------------------------------------------------------------------

    def call(self, pool: str, name: str, fn: Callable[[KnowledgeBaseClient, Job], T]) -> Job:
        """Run ``fn(kb, job)`` on ``pool`` ("model", "ingest" or "io"); the job's signals report back."""
        kb = self.kb

        def work(job: Job) -> T:
            if kb is None:
                raise ServiceStopped(None)
            return fn(kb, job)

        return self.workers.start(pool, name, work)

    # -- what changed ------------------------------------------------------------------------

    def _stop_listening(self) -> None:
        stop, self._stop_events = self._stop_events, None
        if stop is not None:
            stop()  # its thread ends by itself in a moment; the window does not wait for it

    def _hear_server(self, kind: str, collection: str) -> None:
        if not self.closed:
            self._server_event.emit(kind, collection)

    @Slot(str, str)
    def _on_server_event(self, kind: str, _collection: str) -> None:
        if self.closed or self.kb is None:
            return
        if kind == "model":
            self.call("io", "model status", lambda kb, _job: kb.model_status()).done.connect(self._show_model)
        else:  # documents, conversations, or a stream (re)opened after missing what happened meanwhile
            self._look_for_changes()

    def _show_model(self, status: ModelStatus | None) -> None:
        if status is not None:
            self.model_status.emit(status)

    def _look_for_changes(self) -> None:
        if self.kb is None:
            return
        if self._polling:
            self._look_again = True
            return
        self.polled.emit()
        self._polling = True
        collection = self.collection
        job = self.call("io", "revision", lambda kb, _job: kb.revision(collection))

        def compare(revision: str) -> None:
            self._polling = False
            if revision != self._revision:
                self._revision = revision
                self.changed.emit()
            self._again()

        def failed(_error: object) -> None:
            self._polling = False
            self._again()

        job.done.connect(compare)
        job.failed.connect(failed)

    def _again(self) -> None:
        if self._look_again and not self.closed:
            self._look_again = False
            self._look_for_changes()
