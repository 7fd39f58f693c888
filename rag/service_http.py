"""The knowledge-base protocol over HTTP, for a team: the same calls, messages and errors as the pipe.

    POST /v1/call     {"id": "...", "call": "ingest", "args": {...}}
    200               one JSON message per line, as it happens: {"event": ...} ..., then
                      {"result": ...} or {"error": ...}   (rag.codec's JSON)
    POST /v1/cancel   {"id": "..."}   Stop: the call ends as it would in-process (a report
                      marked cancelled, an answer that failed as stopped)

A client that goes away is stopped too, at the next message the server tries to send. A
bearer token, when set, is required on every request. The team
server (``archivist-server``) adds users and rights on top; this module is the transport.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from engine import ArchivistError, CancelToken
from rag import codec
from rag.errors import ServiceError, StoreUnavailable
from rag.knowledge_base import KnowledgeBase
from rag.service import Notice, call

log = logging.getLogger(__name__)

CALL, CANCEL = "/v1/call", "/v1/cancel"


class _Gone(Exception):
    """The client closed the response: it pressed Stop or went away."""


class KnowledgeBaseServer:
    """Serves one ``KnowledgeBase`` on ``host:port`` (port 0: a free one), each call on a thread."""

    def __init__(self, kb: KnowledgeBase, host: str = "127.0.0.1", port: int = 0, token: str = "") -> None:
        self.kb = kb
        self._token = token
        self._running: dict[str, CancelToken] = {}
        self._http = ThreadingHTTPServer((host, port), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="knowledge-base-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> KnowledgeBaseServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                log.debug("%s %s", self.address_string(), format % args)

            def do_POST(self) -> None:  # noqa: N802 - the base class's name
                if self.path not in (CALL, CANCEL):
                    self.send_error(404)
                    return
                if server._token and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {server._token}"):
                    self.send_error(401, "a valid bearer token is required")
                    return
                try:
                    request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    number = str(request["id"])
                    if self.path == CANCEL:
                        self._cancel(number)
                        return
                    method, args = str(request["call"]), codec.decode(request.get("args") or {})
                except (ValueError, KeyError, TypeError) as exc:
                    self.send_error(400, f"not a call: {exc}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                cancel = server._running[number] = CancelToken()
                try:
                    self._call(method, args, cancel)
                finally:
                    server._running.pop(number, None)

            def _cancel(self, number: str) -> None:
                token = server._running.get(number)
                if token is not None:
                    token.cancel()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _call(self, method: str, args: dict[str, Any], cancel: CancelToken) -> None:

                def send(message: dict[str, object]) -> None:
                    data = (codec.dumps(message) + "\n").encode()
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    except OSError as exc:
                        cancel.cancel()
                        raise _Gone from exc

                try:
                    result = call(server.kb, method, args, lambda event: send({"event": event}), cancel)
                    send({"result": result})
                except _Gone:
                    return
                except Exception as exc:  # noqa: BLE001 - every failure goes back typed; bugs are logged
                    ours = isinstance(exc, ArchivistError)
                    log.log(logging.INFO if ours else logging.ERROR, "call %s failed", method, exc_info=not ours)
                    with contextlib.suppress(_Gone):
                        send({"error": exc})
                with contextlib.suppress(OSError):
                    self.wfile.write(b"0\r\n\r\n")

        return Handler


class HttpChannel:
    """A ``Channel`` to a ``KnowledgeBaseServer`` (or a team server speaking the same protocol)."""

    def __init__(self, url: str, token: str = "", timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No read time-out: a call may think for minutes between two messages.
        self._http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout, read=None))
        self.url = url

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        number = uuid.uuid4().hex
        body = codec.dumps({"id": number, "call": method, "args": args})
        try:
            with self._http.stream("POST", CALL, content=body, headers={"Content-Type": "application/json"}) as response:
                if response.status_code != 200:
                    response.read()
                    raise ServiceError(f"the server at {self.url} answered {response.status_code}: {response.text.strip()}")
                forget = cancel.watch(lambda: self._cancel(number)) if cancel is not None else (lambda: None)
                try:
                    for line in response.iter_lines():
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

    def add_listener(self, listener: Notice) -> None:
        """HTTP has no notices: a client asks ``model_status`` when it wants to know."""

    def close(self) -> None:
        self._http.close()
