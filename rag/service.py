"""The knowledge base served to another process, and the client that reaches it.

One small protocol, the same over a pipe (the window's own knowledge-base process) and
over HTTP (a team's server), written with ``rag.codec``:

    -> {"id": 7, "call": "ingest", "args": {...}}       a facade method and its arguments
    <- {"id": 7, "event": IngestProgress}               progress and streamed messages, any number
    <- {"id": 7, "result": IngestReport}                then exactly one result ...
    <- {"id": 7, "error": DocumentCorrupt}              ... or one typed error
    -> {"id": 7, "cancel": true}                        Stop
    -> {"id": 0, "close": true}                         the client is done: the service may end
    <- {"id": 0, "event": ModelStatus}                  a notice nobody asked for (the model's state)

A facade method's ``progress`` callback becomes events, its ``cancel`` token the cancel
message, and a method that streams (``ask``) sends each item as an event. The client,
``KnowledgeBaseClient``, has the facade's methods with the facade's signatures, so a
caller cannot tell it from an in-process ``KnowledgeBase`` (a test compares the two).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from engine import ArchivistError, CancelToken, ModelStatus
from engine.download import DownloadProgress
from rag import codec
from rag.answer_cache import CacheStats
from rag.ask import AskEvent, AskOptions
from rag.calls import Offered, offered_calls
from rag.checkup import CheckQuestion, CheckupReport, CheckupState
from rag.conversations import Conversation
from rag.documents import Passage
from rag.errors import BadCall, ServiceStopped
from rag.following import Followed
from rag.ingest import FileOutcome, IngestReport, ProgressCallback
from rag.knowledge_base import CollectionStatus, KnowledgeBase, StepProgress
from rag.retrieval import SearchMode
from rag.store import CollectionInfo

log = logging.getLogger(__name__)

Message = dict[str, Any]
Notice = Callable[[object], None]

# What a client may call: the facade's methods marked ``@offered``, each with its policy and argument check.
OFFERED = offered_calls(KnowledgeBase)
CALLS = frozenset(OFFERED)

class Service:
    """Answers requests for one ``KnowledgeBase``; each call runs on a thread of its own.

    ``send`` delivers one message to the client (from any thread; it must be thread-safe);
    ``notices``: also send the model's state as it changes (the window's pipe wants them).
    """

    def __init__(self, kb: KnowledgeBase, send: Callable[[Message], None], notices: bool = True) -> None:
        self.kb = kb
        self._send = send
        self._running: dict[int, CancelToken] = {}
        self._lock = threading.Lock()
        # Threads that live on: a thread's first embedding sets up torch's own threads (milliseconds).
        self._calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="call")
        if notices:
            kb.add_listener(lambda status: send({"id": 0, "event": status}))

    def handle(self, message: Message) -> bool:
        """Start the call ``message`` asks for, or cancel one; False once the client said it is done."""
        if message.get("close"):
            return False
        number = int(message["id"])
        if message.get("cancel"):
            with self._lock:
                token = self._running.get(number)
            if token is not None:
                token.cancel()
            return True
        token = CancelToken()
        with self._lock:
            self._running[number] = token
        self._calls.submit(self._run, number, message, token)
        return True

    def stop(self) -> None:
        """Stop every call still running (the client went away)."""
        with self._lock:
            tokens = list(self._running.values())
        for token in tokens:
            token.cancel()
        self._calls.shutdown(wait=False)

    def _run(self, number: int, message: Message, token: CancelToken) -> None:
        try:
            spec = offered(str(message["call"]))
            result = call(self.kb, spec, spec.arguments(message.get("args") or {}),
                          lambda event: self._send({"id": number, "event": event}), token)
            self._send({"id": number, "result": result})
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, typed where ours
            if not isinstance(exc, ArchivistError):  # a bug: logged here, sent as a ServiceError
                log.exception("call %s failed", message.get("call"))
            self._send({"id": number, "error": exc})
        finally:
            with self._lock:
                self._running.pop(number, None)


def offered(method: str) -> Offered:
    """The call named ``method``; ``BadCall`` for a name the knowledge base does not offer."""
    spec = OFFERED.get(method)
    if spec is None:
        raise BadCall(f"{method!r} is not something the knowledge base offers")
    return spec


def call(kb: KnowledgeBase, spec: Offered, args: dict[str, Any], emit: Callable[[object], None],
         cancel: CancelToken) -> object:
    """Run one facade method with arguments ``spec.arguments`` has checked: ``progress`` and
    streamed items go to ``emit``; the result is returned."""
    function = getattr(kb, spec.name)
    parameters = inspect.signature(function).parameters
    if "progress" in parameters:
        args["progress"] = emit
    if "cancel" in parameters:
        args["cancel"] = cancel
    result = function(**args)
    if isinstance(result, Iterator):
        for item in result:
            emit(item)
        return None
    return result


class Channel(Protocol):
    """A transport to a ``Service``: the pipe to the knowledge-base process, or HTTP."""

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        """Send one call; yield its events; return its result (or raise its error)."""
        ...

    def add_listener(self, listener: Notice) -> None:
        """Call ``listener`` with every notice (the model's state, the service stopping)."""
        ...

    def close(self) -> None: ...


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


class KnowledgeBaseClient:
    """A ``KnowledgeBase`` in another process or on another machine, with the same methods.

    Every method blocks until its answer arrives; call them off the GUI thread.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def _call(self, method: str, progress: Callable[[Any], None] | None = None, cancel: CancelToken | None = None,
              **args: object) -> Any:
        stream = self.channel.exchange(method, args, cancel)
        while True:
            try:
                event = next(stream)
            except StopIteration as finished:
                return finished.value
            if progress is not None:
                progress(event)

    # -- collections ------------------------------------------------------------------------

    def collections(self) -> list[CollectionInfo]:
        return self._call("collections")

    def create_collection(self, name: str) -> CollectionInfo:
        return self._call("create_collection", name=name)

    def rename_collection(self, name: str, new_name: str) -> CollectionInfo:
        return self._call("rename_collection", name=name, new_name=new_name)

    def set_adapter(self, name: str, adapter: Path | None) -> CollectionInfo:
        return self._call("set_adapter", name=name, adapter=None if adapter is None else Path(adapter))

    def delete_collection(self, name: str) -> None:
        self._call("delete_collection", name=name)

    def check_embedder(self, collection: str) -> None:
        self._call("check_embedder", collection=collection)

    # -- documents --------------------------------------------------------------------------

    def ingest(self, paths: Sequence[Path], collection: str, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, force: bool = False) -> IngestReport:
        return self._call("ingest", progress, cancel, paths=[Path(p) for p in paths], collection=collection, force=force)

    def remove(self, paths: Sequence[Path], collection: str) -> list[FileOutcome]:
        return self._call("remove", paths=[Path(p) for p in paths], collection=collection)

    def status(self, collection: str) -> CollectionStatus:
        return self._call("status", collection=collection)

    def fingerprint(self, collection: str) -> str:
        return self._call("fingerprint", collection=collection)

    def reembed(self, collection: str, progress: Callable[[StepProgress], None] | None = None,
                cancel: CancelToken | None = None, batch: int = 256) -> CollectionInfo:
        return self._call("reembed", progress, cancel, collection=collection, batch=batch)

    def search(self, query: str, collection: str, limit: int = 10, paths: Sequence[Path] | None = None,
               mode: SearchMode = SearchMode()) -> list[Passage]:
        return self._call("search", query=query, collection=collection, limit=limit,
                          paths=None if paths is None else [Path(p) for p in paths], mode=mode)

    def document_passages(self, path: Path, collection: str) -> list[Passage]:
        return self._call("document_passages", path=Path(path), collection=collection)

    # -- answers ----------------------------------------------------------------------------

    def ask(self, question: str, collection: str, options: AskOptions = AskOptions(),
            cancel: CancelToken | None = None) -> Iterator[AskEvent]:
        stream = self.channel.exchange("ask", {"question": question, "collection": collection, "options": options}, cancel)
        yield from stream  # type: ignore[misc]

    # -- check-up ---------------------------------------------------------------------------

    def checkup(self, collection: str) -> CheckupState:
        return self._call("checkup", collection=collection)

    def add_check(self, collection: str, question: CheckQuestion) -> CheckupState:
        return self._call("add_check", collection=collection, question=question)

    def remove_check(self, collection: str, question: str) -> CheckupState:
        return self._call("remove_check", collection=collection, question=question)

    def run_checkup(self, collection: str, progress: Callable[[StepProgress], None] | None = None) -> CheckupReport:
        return self._call("run_checkup", progress, collection=collection)

    # -- followed folders -------------------------------------------------------------------

    def followed(self, collection: str) -> Followed:
        return self._call("followed", collection=collection)

    def follow(self, collection: str, folder: Path) -> Followed:
        return self._call("follow", collection=collection, folder=Path(folder))

    def unfollow(self, collection: str, folder: Path) -> Followed:
        return self._call("unfollow", collection=collection, folder=Path(folder))

    # -- conversations ----------------------------------------------------------------------

    def list_conversations(self, collection: str) -> list[Conversation]:
        return self._call("list_conversations", collection=collection)

    def get_conversation(self, collection: str, conversation_id: str) -> Conversation:
        return self._call("get_conversation", collection=collection, conversation_id=conversation_id)

    def new_conversation(self, collection: str, title: str = "") -> Conversation:
        return self._call("new_conversation", collection=collection, title=title)

    def rename_conversation(self, collection: str, conversation_id: str, title: str) -> Conversation:
        return self._call("rename_conversation", collection=collection, conversation_id=conversation_id, title=title)

    def delete_conversation(self, collection: str, conversation_id: str) -> None:
        self._call("delete_conversation", collection=collection, conversation_id=conversation_id)

    def export_conversation(self, collection: str, conversation_id: str) -> str:
        return self._call("export_conversation", collection=collection, conversation_id=conversation_id)

    # -- model, embedder, cache -------------------------------------------------------------

    def model_status(self) -> ModelStatus | None:
        return self._call("model_status")

    def embedder_status(self) -> ModelStatus:
        return self._call("embedder_status")

    def add_listener(self, listener: Callable[[ModelStatus], None]) -> None:
        self.channel.add_listener(lambda notice: listener(notice) if isinstance(notice, ModelStatus) else None)

    def unload_model(self) -> None:
        self._call("unload_model")

    def cache_stats(self) -> CacheStats | None:
        return self._call("cache_stats")

    def clear_cache(self) -> None:
        self._call("clear_cache")

    def download_model(self, key: str, folder: Path, mirror: str = "", accept_unverified: bool = False,
                       progress: Callable[[DownloadProgress], None] | None = None, cancel: CancelToken | None = None) -> Path:
        return self._call("download_model", progress, cancel, key=key, folder=Path(folder), mirror=mirror,
                          accept_unverified=accept_unverified)

    def revision(self, collection: str) -> str:
        return self._call("revision", collection=collection)

    def close(self) -> None:
        self.channel.close()
