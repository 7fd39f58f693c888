"""The pipe between the window and its knowledge-base process: calls from many threads at
once over one ``multiprocessing`` connection, answers routed by id (messages: ``rag.service.dispatch``)."""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Callable, Generator
from typing import Any, Protocol

from engine import CancelToken
from rag.errors import ServiceStopped
from rag.service import codec
from rag.service.client import Notice
from rag.service.dispatch import Message


class Connection(Protocol):
    """The part of ``multiprocessing.connection.Connection`` a pipe channel uses."""

    def send_bytes(self, buf: bytes) -> None: ...
    def recv_bytes(self) -> bytes: ...
    def close(self) -> None: ...


class PipeChannel:
    """A ``Channel`` over a pipe: calls from many threads at once, answers routed by id.

    ``stopped()`` tells, once the pipe is closed from the other side, how the process ended
    (its exit code); every call in flight then fails with ``ServiceStopped``.
    """

    def __init__(self, connection: Connection, stopped: Callable[[], int | None] = lambda: None) -> None:
        self._connection = connection
        self._stopped = stopped
        self._ids = itertools.count(1)
        self._calls: dict[int, queue.SimpleQueue[tuple[str, object]]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._listeners: list[Notice] = []
        self._failure: BaseException | None = None
        self._reader = threading.Thread(target=self._read, name="knowledge-base-pipe", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._failure is None

    def add_listener(self, listener: Notice) -> None:
        self._listeners.append(listener)

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        number = next(self._ids)
        answers: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        with self._lock:
            if self._failure is not None:
                raise self._failure
            self._calls[number] = answers
        forget = (lambda: None)
        finished = False
        try:
            self._write({"id": number, "call": method, "args": args})
            if cancel is not None:
                forget = cancel.watch(lambda: self._write({"id": number, "cancel": True}))
            while True:
                kind, value = answers.get()
                if kind == "event":
                    yield value
                elif kind == "result":
                    finished = True
                    return value
                else:
                    finished = True
                    raise value  # type: ignore[misc]
        finally:
            forget()
            with self._lock:
                self._calls.pop(number, None)
            if not finished and self._failure is None:  # the caller stopped listening: stop the work too
                with contextlib.suppress(ServiceStopped):
                    self._write({"id": number, "cancel": True})

    def close(self, timeout: float = 10.0) -> None:
        """Tell the service to end, wait for its side to close (so that its end reads as EOF
        there, too: closing a pipe another thread is reading does not end the read), then close."""
        if self._failure is None:
            with contextlib.suppress(ServiceStopped):
                self._write({"id": 0, "close": True})
            self._reader.join(timeout)
        with contextlib.suppress(OSError):
            self._connection.close()

    def _write(self, message: Message) -> None:
        data = codec.dumps(message).encode()
        with self._send_lock:
            try:
                self._connection.send_bytes(data)
            except (OSError, ValueError) as exc:
                raise self._failure or ServiceStopped(self._stopped()) from exc

    def _read(self) -> None:
        while True:
            try:
                message = codec.loads(self._connection.recv_bytes())
            except (EOFError, OSError):
                break
            number = message.get("id", 0)
            if number == 0:
                if "error" in message:  # the service could not start
                    self._fail(message["error"])
                    return
                for listener in list(self._listeners):
                    listener(message["event"])
                continue
            with self._lock:
                answers = self._calls.get(number)
            if answers is None:
                continue  # a call the caller gave up on
            for kind in ("event", "result", "error"):
                if kind in message:
                    answers.put((kind, message[kind]))
        self._fail(ServiceStopped(self._stopped()))

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error
            calls = list(self._calls.values())
        for answers in calls:
            answers.put(("error", self._failure))
        for listener in list(self._listeners):
            listener(self._failure)
