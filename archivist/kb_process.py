"""The window's knowledge base, in a process of its own.

The knowledge-base process owns the store client, the embedder, the keyword indexes, the
indexing and the followed folders; the engine's process hangs under it. The window's
process imports none of torch, chromadb or llama.cpp: it talks to this process through a
``KnowledgeBaseClient`` over a pipe (``rag.service.dispatch``). If the process dies, every call in
flight fails with ``ServiceStopped``, listeners hear of it, and ``restart`` starts a new one;
what was indexed is on disk and stays.

The process opens the store itself, so nothing of it listens on the network. The user's
other clients (``archivist-cli`` run while the window is open) reach it on a socket only that
user can open, proving a per-session key (``running_knowledge_base``), rather than opening the
same store a second time beside it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import secrets
import sys
import threading
from multiprocessing.connection import Client, Connection, Listener
from multiprocessing.context import AuthenticationError
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from archivist.held_channel import HeldChannel
from archivist.settings import Settings
from engine import ArchivistError
from rag.errors import StoreUnavailable
from rag.service import codec
from rag.service.client import KnowledgeBaseClient, Notice
from rag.service.dispatch import Message
from rag.service.pipe import PipeChannel

if TYPE_CHECKING:
    from rag.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)


class KnowledgeBaseProcess(HeldChannel[PipeChannel]):
    """Starts, watches, restarts and ends the knowledge-base process: the one holder of its pid.

    It is a ``Channel``: hand it to ``KnowledgeBaseClient``.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._listeners: list[Notice] = []
        self._process: multiprocessing.process.BaseProcess | None = None

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

    def add_listener(self, listener: Notice) -> None:
        """Hear every notice: the model's state, and a ``ServiceStopped`` if the process dies."""
        self._listeners.append(listener)

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
    """The knowledge-base process: open the knowledge base, answer the window until the pipe
    closes, and meanwhile its user's other clients (``archivist-cli``) on a private socket."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.nice(5)  # the window's process comes first when cores are scarce
    from archivist import logs
    from archivist.composition import open_knowledge_base
    from rag import offline

    offline.enforce()
    logs.configure(settings.log_path, process="knowledge-base")
    # Chroma's and onnxruntime's imports take a while each; they run side by side.
    threading.Thread(target=_import_heavy_libraries, name="import", daemon=True).start()
    try:
        kb = open_knowledge_base(settings)
    except ArchivistError as exc:
        with contextlib.suppress(OSError, ValueError):
            connection.send_bytes(codec.dumps({"id": 0, "error": exc}).encode())
        connection.close()
        return
    kb.start()
    # The embedder's weights and the collection's indexes, now rather than in the first search.
    threading.Thread(target=kb.warm, args=(settings.collection,), name="warm-up", daemon=True).start()
    listener = _listen(kb, settings.data_path / NOTE)
    try:
        _answer(kb, connection, notices=True)
    finally:
        with contextlib.suppress(OSError):
            (settings.data_path / NOTE).unlink()
        with contextlib.suppress(OSError):
            listener.close()
        kb.close()
        log.info("knowledge base closed")


def _answer(kb: KnowledgeBase, connection: Connection, notices: bool) -> None:
    """Serve one client on ``connection`` until it says it is done or goes away."""
    from rag.service.dispatch import Service

    lock = threading.Lock()

    def send(message: Message) -> None:
        data = codec.dumps(message).encode()
        with lock, contextlib.suppress(OSError, ValueError):
            connection.send_bytes(data)

    service = Service(kb, send, notices)
    try:
        while service.handle(codec.loads(connection.recv_bytes())):
            pass
    except (EOFError, OSError):
        pass
    finally:
        service.stop()
        connection.close()


# -- the user's other clients: a private socket -------------------------------------------

NOTE = "knowledge-base.json"  # in the data folder: where the running process listens, and its key


def _listen(kb: KnowledgeBase, note: Path) -> Listener:
    """Answer clients of this user on a socket only they can reach: a Unix socket in a folder
    only they may enter (a named pipe on Windows), and a random key each client must prove it
    holds (multiprocessing's HMAC challenge), written to a note only they may read."""
    key = secrets.token_bytes(32)
    listener = Listener(family="AF_PIPE" if sys.platform == "win32" else "AF_UNIX", authkey=key)
    temporary = note.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"address": listener.address, "key": key.hex(), "pid": os.getpid()}, out)
    os.replace(temporary, note)

    def accept() -> None:
        while True:
            try:
                connection = listener.accept()
            except AuthenticationError:
                log.warning("refused a local client that did not know the key")
                continue
            except (OSError, EOFError) as exc:
                if listener._listener is None:  # type: ignore[attr-defined] - closed by us: the process ends
                    return
                log.warning("a local client went away during the handshake (%s)", exc)  # the next one is served
                continue
            threading.Thread(target=_answer, args=(kb, connection, False), name="local-client", daemon=True).start()

    threading.Thread(target=accept, name="local-clients", daemon=True).start()
    return listener


def running_knowledge_base(data: Path) -> KnowledgeBaseClient | None:
    """The knowledge base of the process that serves the data folder ``data`` (the window's),
    if one runs: a second process must not open the same store beside it."""
    try:
        note = json.loads((data / NOTE).read_text())
        address, key, pid = note["address"], bytes.fromhex(note["key"]), int(note["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not psutil.pid_exists(pid):
        return None  # it crashed: its note stayed behind
    try:
        connection = Client(address, family="AF_PIPE" if sys.platform == "win32" else "AF_UNIX", authkey=key)
    except (OSError, AuthenticationError) as exc:
        raise StoreUnavailable(f"the Archivist window's knowledge base (process {pid}) holds this data folder and "
                               f"did not answer ({exc}); close the window or try again") from exc
    return KnowledgeBaseClient(PipeChannel(connection))


def _import_heavy_libraries() -> None:
    from rag import offline

    offline.enforce()
    import onnxruntime  # noqa: F401 - the embedder's runtime, while the store opens
