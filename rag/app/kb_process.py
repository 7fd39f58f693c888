"""The window's knowledge base, in a process of its own.

The knowledge-base process owns the store client, the embedder, the keyword indexes, the
indexing and the followed folders; the engine's process hangs under it. The window's
process imports none of torch, chromadb or llama.cpp: it talks to this process through a
``KnowledgeBaseClient`` over a pipe (``rag.service``). If the process dies, every call in
flight fails with ``ServiceStopped``, listeners hear of it, and ``restart`` starts a new one;
what was indexed is on disk and stays.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Generator
from multiprocessing.connection import Connection
from typing import Any

from engine import ArchivistError, CancelToken
from rag import codec
from rag.app.settings import Settings
from rag.errors import ServiceStopped
from rag.service import Message, Notice, PipeChannel

log = logging.getLogger(__name__)


class KnowledgeBaseProcess:
    """Starts, watches, restarts and ends the knowledge-base process: the one holder of its pid.

    It is a ``Channel``: hand it to ``KnowledgeBaseClient``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._listeners: list[Notice] = []
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._channel: PipeChannel | None = None

    @property
    def running(self) -> bool:
        """Started and not yet closed (it may have died since: calls then fail with ``ServiceStopped``)."""
        return self._channel is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process (it opens the knowledge base; calls wait until it has)."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(self.settings, theirs), name="archivist-knowledge-base")
        process.start()
        theirs.close()  # so that the child's death reads as EOF here
        channel = PipeChannel(ours, stopped=lambda: _exit_code(process))
        channel.add_listener(lambda notice: self._notify(channel, notice))
        with self._lock:
            self._process, self._channel = process, channel
        log.info("knowledge-base process %s started", process.pid)

    def restart(self, settings: Settings | None = None) -> None:
        """End the process (if it still runs) and start a new one, with new settings if given."""
        self.close()
        if settings is not None:
            self.settings = settings
        self.start()

    def add_listener(self, listener: Notice) -> None:
        """Hear every notice: the model's state, and a ``ServiceStopped`` if the process dies."""
        self._listeners.append(listener)

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        with self._lock:
            channel = self._channel
        if channel is None:
            raise ServiceStopped(None)
        return channel.exchange(method, args, cancel)

    def close(self) -> None:
        """Close the pipe (the process closes its knowledge base and exits), kill it if it lingers."""
        with self._lock:
            process, channel = self._process, self._channel
            self._process = self._channel = None
        if channel is not None:
            channel.close()
        if process is not None:
            process.join(8)
            if process.is_alive():
                log.warning("knowledge-base process %s did not exit; killing it", process.pid)
                process.kill()
                process.join(2)

    def _notify(self, channel: PipeChannel, notice: object) -> None:
        with self._lock:
            current = channel is self._channel
        if not current:  # the end of a process we closed on purpose
            return
        if isinstance(notice, ArchivistError):
            log.error("knowledge-base process: %s", notice)
        for listener in list(self._listeners):
            listener(notice)


def _exit_code(process: multiprocessing.process.BaseProcess) -> int | None:
    process.join(2)
    return process.exitcode


# -- the process's side -------------------------------------------------------------------


def serve(settings: Settings, connection: Connection) -> None:
    """The knowledge-base process: open the knowledge base, answer requests until the pipe closes."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.nice(5)  # the window's process comes first when cores are scarce
    from rag import offline
    from rag.app import logs
    from rag.app.composition import open_knowledge_base
    from rag.service import Service

    offline.enforce()
    logs.configure(settings.log_path, process="knowledge-base")
    lock = threading.Lock()

    def send(message: Message) -> None:
        data = codec.dumps(message).encode()
        with lock, contextlib.suppress(OSError, ValueError):
            connection.send_bytes(data)

    # Chroma's and torch's imports take seconds; they run while the store server starts, not after it.
    threading.Thread(target=_import_heavy_libraries, name="import", daemon=True).start()
    try:
        kb = open_knowledge_base(settings, out_of_process=True)
    except ArchivistError as exc:
        send({"id": 0, "error": exc})
        connection.close()
        return
    service = Service(kb, send)
    kb.start()
    # The embedder's weights, now rather than in the first search.
    threading.Thread(target=kb.embedder.embed, args=(["warm up"],), name="warm-up", daemon=True).start()
    try:
        while service.handle(codec.loads(connection.recv_bytes())):
            pass
    except (EOFError, OSError):
        pass
    finally:
        service.stop()
        kb.close()
        connection.close()
        log.info("knowledge base closed")


def _import_heavy_libraries() -> None:
    from rag import offline

    offline.enforce()
    import chromadb  # noqa: F401
    import sentence_transformers  # noqa: F401
