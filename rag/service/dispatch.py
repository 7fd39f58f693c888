"""The knowledge base served to another process: one small protocol, the same over a pipe
(the window's own knowledge-base process, ``rag.service.pipe``) and over HTTP (a team's server),
written with ``rag.service.codec``:

    -> {"id": 7, "call": "ingest", "args": {...}}       a facade method and its arguments
    <- {"id": 7, "event": IngestProgress}               progress and streamed messages, any number
    <- {"id": 7, "result": IngestReport}                then exactly one result ...
    <- {"id": 7, "error": DocumentCorrupt}              ... or one typed error
    -> {"id": 7, "cancel": true}                        Stop
    -> {"id": 0, "close": true}                         the client is done: the service may end
    <- {"id": 0, "event": ModelStatus}                  a notice nobody asked for (the model's state)

A facade method's ``progress`` callback becomes events, its ``cancel`` token the cancel
message, and a method that streams (``ask``) sends each item as an event. The calls are the
facade's methods marked ``@offered``; the client (``rag.service.client``) is made from them too.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine import ArchivistError, CancelToken
from rag.calls import Offered, offered_calls
from rag.errors import BadCall
from rag.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

Message = dict[str, Any]

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


