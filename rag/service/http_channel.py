"""The client side of the knowledge-base protocol over HTTP: a team's ``archivist-server``.

    POST /v1/call     {"id": "...", "call": "ingest", "args": {...}}
    200               one JSON message per line, as it happens: {"event": ...} ..., then
                      {"result": ...} or {"error": ...}   (rag.service.codec's JSON)
    401, 403, 400     {"detail": "...", "error": <the typed error>}: not signed in, not allowed, not a call
    POST /v1/cancel   {"id": "..."}   Stop: the call ends as it would in-process (a report
                      marked cancelled, an answer that failed as stopped)

    GET  /v1/events   text/event-stream: ``data: {"kind": "documents" | "conversations" | "model",
                      "collection": C}`` as things change (``server.events``); ``EventStream`` listens

The same calls, messages and errors as the pipe; the server is ``server.app``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx

from engine import ArchivistError, CancelToken
from rag.errors import NotSignedIn, ServiceError, StoreUnavailable
from rag.indexing.discovery import content_hash, discover
from rag.service import codec
from rag.service.client import Notice, ServerEvent

CALL, CANCEL, UPLOAD, UPLOADS, EVENTS = "/v1/call", "/v1/cancel", "/v1/upload", "/v1/uploads", "/v1/events"
# The longest message line accepted from a server: a collection's status with 100,000 files is ~40 MB.
MAX_LINE = 256 * 2**20

log = logging.getLogger(__name__)


class HttpChannel:
    """A ``Channel`` to a team server, signed in with the user's ``token``."""

    def __init__(self, url: str, token: str = "", timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No read time-out: a call may think for minutes between two messages.
        self._http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout, read=None))
        self.url = url
        self._token = token

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        if method == "ingest":
            self._upload(args["paths"], args["collection"], cancel)
        number = uuid.uuid4().hex
        body = codec.dumps({"id": number, "call": method, "args": args})
        try:
            with self._http.stream("POST", CALL, content=body, headers={"Content-Type": "application/json"}) as response:
                if response.status_code != 200:
                    raise _refusal(response, self.url)
                forget = cancel.watch(lambda: self._cancel(number)) if cancel is not None else (lambda: None)
                try:
                    for line in _lines(response, MAX_LINE):
                        message = codec.loads(line)
                        if "event" in message:
                            yield message["event"]
                        elif "error" in message:
                            raise message["error"]
                        else:
                            return message["result"]
                finally:
                    forget()
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach the knowledge base at {self.url} ({exc})") from exc
        raise ServiceError(f"the server at {self.url} ended the call without an answer")

    def _cancel(self, number: str) -> None:
        # On a thread: Stop is pressed on the window's thread, which must not wait on the network.
        def send() -> None:
            with contextlib.suppress(httpx.HTTPError):
                self._http.post(CANCEL, content=json.dumps({"id": number}), headers={"Content-Type": "application/json"})

        threading.Thread(target=send, name="cancel", daemon=True).start()

    def _upload(self, paths: list[Path], collection: str, cancel: CancelToken | None) -> None:
        """Send the server each file of this machine that ``paths`` name and it lacks (or holds an
        older copy of), for it to index in their place; files gone from a folder go from its copy."""
        files, folders, _ = discover(p for p in paths if Path(p).exists())
        hashes = {}
        for file in files:
            if cancel is not None and cancel.cancelled:
                return  # the ingest that follows stops at once, keeping what was done
            with contextlib.suppress(OSError):  # unreadable here: the server reports it as it would any other
                hashes[str(file)] = content_hash(file)
        wanted = self._json("POST", UPLOADS, json={"collection": collection, "folders": [str(f) for f in folders],
                                                   "files": hashes})["needed"]
        for name in wanted:
            if cancel is not None and cancel.cancelled:
                return
            if name not in hashes:  # only the files offered above, whatever a server asks for
                log.warning("the server at %s asked for a file it was not offered: %r", self.url, name)
                continue
            try:
                with open(name, "rb") as body:
                    response = self._http.put(UPLOAD, params={"collection": collection, "path": name}, content=body)
            except OSError:
                continue
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"cannot reach the knowledge base at {self.url} ({exc})") from exc
            if response.status_code != 200:
                raise _refusal(response, self.url)

    # -- the team server's own calls: who am I, and an owner's grants -------------------------

    def whoami(self) -> dict[str, object]:
        return self._json("GET", "/v1/whoami")

    def grants(self, collection: str) -> list[tuple[str, str]]:
        """(user or @group, role) of everyone with a role on ``collection`` (an owner may ask)."""
        return [(s, r) for s, r in self._json("GET", "/v1/grants", params={"collection": collection})]

    def grant(self, name: str, collection: str, role: str | None) -> bool:
        """Give ``name`` (a user or @group) ``role`` on ``collection``; None takes it away."""
        return bool(self._json("POST", "/v1/grant", json={"name": name, "collection": collection, "role": role})["changed"])

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach the knowledge base at {self.url} ({exc})") from exc
        if response.status_code != 200:
            raise _refusal(response, self.url)
        return response.json()

    def listen(self, heard: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Hear the server's events (``EventStream``) until the returned function is called."""
        stream = EventStream(self.url, self._token, heard).start()
        return lambda: stream.close(wait=0)

    def add_listener(self, listener: Notice) -> None:
        """HTTP has no notices: a client asks ``model_status`` when it wants to know."""

    def close(self) -> None:
        self._http.close()


def _lines(response: httpx.Response, limit: int) -> Iterator[bytes]:
    """The response's lines, each at most ``limit`` bytes (``ServiceError`` past that)."""
    pending = bytearray()
    for chunk in response.iter_bytes():
        searched = len(pending)  # a long line is searched for its end once, not once per chunk
        pending += chunk
        while (end := pending.find(b"\n", searched)) >= 0:
            line, pending, searched = bytes(pending[:end]), pending[end + 1:], 0
            if line.strip():
                yield line
        if len(pending) > limit:
            raise ServiceError(f"the server sent a message of over {limit // 2**20} MB")
    if pending.strip():
        yield bytes(pending)


def _refusal(response: httpx.Response, url: str) -> ArchivistError:
    """The typed error a refused call carries (401 ``NotSignedIn``, 403 ``AccessDenied`` ...)."""
    response.read()
    try:
        error = codec.decode(response.json()["error"])
    except (ValueError, KeyError, TypeError, ArchivistError):
        error = None
    if isinstance(error, ArchivistError):
        return error
    if response.status_code == 401:
        return NotSignedIn(f"the server at {url} wants a valid token.")
    return ServiceError(f"the server at {url} answered {response.status_code}: {response.text.strip()[:300]}")



# -- what changed on the server, as it happens -------------------------------------------------

# A stream silent for this long is taken for dead (the server sends a heartbeat every 15 s).
_SILENCE = 45.0
_LONGEST_EVENT = 64 * 2**10


CONNECTED = ServerEvent("connected")


class EventStream:
    """Listens to a team server's ``/v1/events`` on a thread of its own, calling ``heard`` (on that
    thread) with each ``ServerEvent``; a stream that breaks or cannot open is tried again after 1, 2,
    4 ... up to ``longest_wait`` seconds. ``close`` ends it."""

    def __init__(self, url: str, token: str, heard: Callable[[ServerEvent], None], longest_wait: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"} if token else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(10.0, read=_SILENCE))
        self.url = url
        self._heard = heard
        self._longest_wait = longest_wait
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="server events", daemon=True)

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def close(self, wait: float = 5.0) -> None:
        """Stop listening, waiting at most ``wait`` seconds for the thread to end (it ends at once: the
        open connection is shut under it, since closing the response from another thread would leave the
        thread blocked in its read until a heartbeat; one still connecting ends when that does)."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            network = response.extensions.get("network_stream")
            connection = network.get_extra_info("socket") if network is not None else None
            if isinstance(connection, socket.socket):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and wait > 0:
            self._thread.join(wait)

    def _run(self) -> None:
        try:
            self._keep_listening()
        finally:
            self._http.close()

    def _keep_listening(self) -> None:
        wait = 1.0
        while not self._stop.is_set():
            opened_at = time.monotonic()
            try:
                self._listen()
            except (httpx.HTTPError, ServiceError, OSError, RuntimeError) as exc:
                if not self._stop.is_set():
                    log.info("the event stream from %s broke (%s); again in %g s", self.url, exc, wait)
            if time.monotonic() - opened_at > 2 * _SILENCE:
                wait = 1.0  # it ran for a while: a new break, not the same one again
            self._stop.wait(wait)
            wait = min(wait * 2, self._longest_wait)

    def _listen(self) -> None:
        with self._http.stream("GET", EVENTS) as response:
            with self._lock:
                self._response = response
            if self._stop.is_set():  # closed while this was connecting
                return
            try:
                if response.status_code != 200:
                    raise _refusal(response, self.url)
                self._heard(CONNECTED)
                for event in server_events(_lines(response, _LONGEST_EVENT)):
                    if self._stop.is_set():
                        return
                    self._heard(event)
            except ArchivistError as exc:  # refused (a revoked token, a server without events): said once a try
                log.warning("the server at %s sends no events: %s", self.url, exc)
            finally:
                with self._lock:
                    self._response = None


def server_events(lines: Iterator[bytes]) -> Iterator[ServerEvent]:
    """The events of a server-sent-events stream's non-blank lines: each ``data:`` line one JSON
    event (the server sends no event over several lines); comments (heartbeats) and what this
    side does not know are skipped."""
    for line in lines:
        field, _, value = line.decode("utf-8", "replace").partition(":")
        if field != "data":
            continue
        try:
            said = json.loads(value)
            event = ServerEvent(str(said["kind"]), str(said.get("collection", "")))
        except (ValueError, KeyError, TypeError):
            log.warning("an event the server sent is not one: %.200r", value)
            continue
        yield event
