"""The client side of the knowledge-base protocol over HTTP: a team's ``archivist-server``.

    POST /v1/call     {"id": "...", "call": "ingest", "args": {...}}
    200               one JSON message per line, as it happens: {"event": ...} ..., then
                      {"result": ...} or {"error": ...}   (rag.service.codec's JSON)
    401, 403, 400     {"detail": "...", "error": <the typed error>}: not signed in, not allowed, not a call
    POST /v1/cancel   {"id": "..."}   Stop: the call ends as it would in-process (a report
                      marked cancelled, an answer that failed as stopped)

The same calls, messages and errors as the pipe; the server is ``server.app``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx

from engine import ArchivistError, CancelToken
from rag.errors import NotSignedIn, ServiceError, StoreUnavailable
from rag.indexing.discovery import content_hash, discover
from rag.service import codec
from rag.service.client import Notice

CALL, CANCEL, UPLOAD, UPLOADS = "/v1/call", "/v1/cancel", "/v1/upload", "/v1/uploads"
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

