"""``archivist-server``'s web app: the knowledge-base protocol of ``rag.service.dispatch`` over HTTP,
with a user behind every call and that user's rights checked before the call runs.

    POST /v1/call     {"id": "...", "call": "ask", "args": {...}}  ->  NDJSON messages, as on the pipe
    POST /v1/cancel   {"id": "..."}                               Stop one of your own calls
    POST /v1/uploads  {"collection": C, "files": {P: hash}, "folders": [F]}  ->  {"needed": [P]}: the files
                      the server lacks or holds older copies of; copies of files gone from F are deleted
    PUT  /v1/upload?collection=C&path=P   the file's bytes        a file of the user's machine, kept for ingest:
                      from then on, P in that user's calls means the server's copy
    GET  /v1/whoami   {"name": ..., "admin": ..., "groups": [...]}
    GET  /v1/grants?collection=C   [[subject, role], ...]         an owner's view of who may do what
    POST /v1/grant    {"name": "bob" | "@hr", "collection": C, "role": "reader" | null}   null: revoke
    GET  /v1/health   {"ok": true}                                for a load balancer; no token

400: a body or arguments of the wrong shape (each call's arguments are checked against the facade's
signature before anything else looks at them). 401: no token, a wrong, revoked or expired one, or a
proxy header from a socket address not listed. 403: signed in, but without the role the call needs
(``server.policy``), or a request a browser sent from another site. 413: a body over the limit.
415: a body that is not ``application/json``. 429: too many calls of one user at once. The body is
``{"detail": "<plain words>", "error": <the typed error in rag.service.codec's JSON>}``.
A collection the user cannot read is left out of their list; each one's conversations are
their own; the answer cache is shared, and only reachable through a collection one may read.
"""


import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine import ArchivistError, CancelToken
from rag.answering.ask import AskOptions
from rag.answering.conversations import ConversationStore
from rag.calls import Offered
from rag.errors import AccessDenied, BadCall, KnowledgeBaseError, NotSignedIn, StoreUnavailable, TooBusy
from rag.indexing.ingest import content_hash
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from rag.service.dispatch import OFFERED, call
from server.accounts import Accounts, Role, User
from server.audit import AuditLog
from server.policy import Policy
from server.uploads import Uploads, user_id

log = logging.getLogger(__name__)

Message = dict[str, object]


@dataclass
class ServerConfig:
    """What the administrator decides (``[server]`` in the server's settings file)."""

    folders: list[Path] = field(default_factory=list)  # server folders editors may index and follow
    proxies: frozenset[str] = frozenset()  # socket addresses of the intranet's authenticating reverse proxy
    proxy_header: str = "X-Remote-User"
    audit_questions: bool = True  # False: the audit log says "asked" without the question
    anyone_creates: bool = False  # True: any user may make a collection (and owns it); else administrators
    home: Path = Path(".")

    max_upload_mb: int = 512
    max_body_kb: int = 1024  # a call's JSON body (a question, a schema, a list of paths)
    max_calls_per_user: int = 8  # calls of one user running at once
    watches_folders: bool = True  # False on all but one of several replicas sharing one store


class Refusal(Exception):
    """A request answered with an HTTP error status and the typed error the client shows."""

    def __init__(self, status: int, error: ArchivistError) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error


def create_app(kb: KnowledgeBase, accounts: Accounts, audit: AuditLog, config: ServerConfig) -> FastAPI:
    """The web app over one knowledge base; every request is served on behalf of a user."""
    app = FastAPI(title="Archivist team server", docs_url=None, redoc_url=None, openapi_url=None)
    uploads = Uploads(config.home)
    policy = Policy(kb, accounts, uploads, config.folders, config.anyone_creates, config.home / "conversations")
    running: dict[tuple[str, str], CancelToken] = {}
    busy: Counter[str] = Counter()
    busy_lock = threading.Lock()
    refusals = _Throttle()
    hashes = _Hashes()
    # Calls run on threads that live on: a thread's first embedding sets up torch's own threads (milliseconds).
    calls = ThreadPoolExecutor(max_workers=64, thread_name_prefix="call")
    views: dict[str, KnowledgeBase] = {}
    views_lock = threading.Lock()

    def view(user: User) -> KnowledgeBase:
        """The knowledge base as ``user`` sees it: their own conversations, everything else shared."""
        with views_lock:
            if user.name not in views:
                views[user.name] = kb.with_conversations(ConversationStore(policy.conversations / user_id(user.name)))
            return views[user.name]

    def refused(status: int):  # noqa: ANN202 - a Starlette exception handler
        def handler(request: Request, exc: Exception) -> JSONResponse:
            error = exc.error if isinstance(exc, Refusal) else exc
            return JSONResponse({"detail": str(error), "error": codec.encode(error)},
                                status_code=exc.status if isinstance(exc, Refusal) else status)
        return handler

    app.add_exception_handler(NotSignedIn, refused(401))
    app.add_exception_handler(AccessDenied, refused(403))
    app.add_exception_handler(KnowledgeBaseError, refused(400))
    app.add_exception_handler(Refusal, refused(400))

    async def signed_in(request: Request) -> User:  # on the event loop: a lookup of microseconds
        address = _address(request)
        vouched = request.headers.get(config.proxy_header)
        try:
            if vouched is not None:
                if not address or address not in config.proxies:
                    raise NotSignedIn(f"the {config.proxy_header} header came from {address}, which is not a trusted proxy.")
                name = vouched.strip()
                if not name or len(name) > 200 or not name.isprintable():
                    raise NotSignedIn(f"the proxy sent an empty or unusable {config.proxy_header} header.")
                return accounts.user(name)
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            return accounts.authenticate(token.strip() if scheme.lower() == "bearer" else "")
        except NotSignedIn as exc:
            more = refusals.admit(address, exc.reason)
            if more is not None:  # one line per address and reason a minute: a flood cannot fill the disk
                detail = exc.reason + (f" (and {more} more such refusals from this address)" if more else "")
                audit.record("?", "sign-in", detail=detail, outcome="refused", address=address)
            raise

    Caller = Annotated[User, Depends(signed_in)]

    async def body_of(request: Request, limit_kb: int | None = None) -> dict[str, object]:
        """The request's JSON object: sent as JSON (a browser cannot send that to another site
        without asking it first), from this site, within the size limit."""
        _same_site(request)
        kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Refusal(415, BadCall(f"the body must be sent as application/json, not {kind or 'nothing'!r}"))
        limit = (limit_kb or config.max_body_kb) * 1024
        too_large = Refusal(413, BadCall(f"the request is over this server's limit of {limit // 1024:,} KB"))
        declared = request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_large
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise BadCall(f"the body is not JSON ({type(exc).__name__})") from None
        if not isinstance(value, dict):
            raise BadCall("the body must be a JSON object")
        return value

    def take_slot(user: User) -> None:
        """Count one more call of ``user``'s running (``busy_lock`` held); ``TooBusy`` past the limit."""
        if busy[user.name] >= config.max_calls_per_user:
            raise Refusal(429, TooBusy(f"{user.name} has {busy[user.name]} calls running; at most "
                                       f"{config.max_calls_per_user} at once"))
        busy[user.name] += 1

    def refuse(user: User, action: str, collection: str, reason: str, address: str) -> None:
        """A refusal on the audit log, so that refused requests cannot fill the disk: once a minute
        per user, action and reason, and at most ``_REFUSALS_A_MINUTE`` lines a minute per user
        whatever words they vary; the next line written says how many were only counted."""
        repeated = refusals.admit(f"{user.name}\0{action}", reason)
        if repeated is None:
            return
        unwritten = refusals.admit(user.name, "any refusal", budget=_REFUSALS_A_MINUTE)
        if unwritten is None:
            return
        counted = [f"{repeated} more such refusals"] if repeated else []
        counted += [f"{unwritten} other refusals of {user.name}'s not written"] if unwritten else []
        detail = _clip(reason, 300) + (f" (and {'; '.join(counted)})" if counted else "")
        audit.record(user.name, _clip(action), _clip(collection, 200), detail, "refused", address)

    def detail(spec: Offered, args: dict[str, object]) -> str:
        if spec.name == "ask":
            options = args.get("options")
            mode = f" (schema {options.schema.name!r})" if isinstance(options, AskOptions) and options.schema else ""
            return (repr(args.get("question", "")) if config.audit_questions else "(question not kept)") + mode

        def said(value: object) -> str:
            if isinstance(value, list | tuple):
                return (f"({len(value)}) " if len(value) > 1 else "") + ", ".join(said(v) for v in value)
            return _clip(str(value), 300) if isinstance(value, Path | str) else _clip(repr(value), 300)

        shown = [f"{k} {said(v)}" for k, v in args.items() if k not in ("collection", "name", "options") and v]
        return _clip("; ".join(shown), 1000)

    @app.get("/v1/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/call")
    async def call_route(request: Request, user: Caller) -> Response:
        address = _address(request)
        body = await body_of(request)
        number, method, raw = body.get("id"), body.get("call"), body.get("args", {})
        if not isinstance(number, str) or not 0 < len(number) <= 100:
            raise BadCall("a call needs an id: a string of at most 100 characters")
        if not isinstance(method, str) or method not in OFFERED:
            named = _clip(method if isinstance(method, str) else repr(method))
            refuse(user, "unknown call", "", repr(named), address)
            raise BadCall(f"{named!r} is not something the knowledge base offers")
        spec = OFFERED[method]
        if not isinstance(raw, dict):
            raise BadCall(f"{method}: its arguments must be a JSON object")
        try:
            decoded = codec.decode(raw)
        except ArchivistError as exc:
            raise BadCall(f"{method}: {exc}") from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise BadCall(f"{method}: its arguments are not in the protocol's shape ({type(exc).__name__})") from None
        args = spec.arguments(decoded)
        said = detail(spec, args) if spec.audited else ""  # as the user named things
        try:
            await asyncio.to_thread(policy.authorize, user, spec, args)
        except AccessDenied as exc:
            refuse(user, method, policy.collection_of(spec, args), exc.reason, address)
            raise
        key = (user.name, number)
        with busy_lock:
            if key in running:
                raise Refusal(429, TooBusy(f"a call of {user.name}'s with the id {_clip(number)!r} is running"))
            take_slot(user)
            cancel = running[key] = CancelToken()
        messages = _start(user, spec, args, cancel, address, said, key)
        first = await _first(request, messages, cancel)
        if first is None or "event" not in first:  # answered at once (or nobody is listening): one response
            return Response(_line(user, first) if first else "", media_type="application/x-ndjson")
        return StreamingResponse(_stream(user, first, messages, cancel), media_type="application/x-ndjson")

    def _line(user: User, message: Message) -> str:
        return codec.dumps(message, lambda path: uploads.shown(user.name, path)) + "\n"

    def _start(user: User, spec: Offered, args: dict[str, object], cancel: CancelToken, address: str, said: str,
               key: tuple[str, str]) -> asyncio.Queue[Message | None]:
        """Run the call on a worker thread; its messages arrive on the queue, then None."""
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue[Message | None] = asyncio.Queue()
        method = spec.name

        def put(message: Message | None) -> None:
            loop.call_soon_threadsafe(messages.put_nowait, message)

        def work() -> None:
            collection = policy.collection_of(spec, args)
            outcome = "failed"
            try:
                policy.prepare(user, spec, args)
                deleted = policy.collection_id(collection) if method == "delete_collection" else ""
                result = call(view(user), spec, dict(args), lambda event: put({"event": event}), cancel)  # checked above
                message: Message = {"result": policy.result(user, spec, args, result, deleted)}
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, typed where ours
                ours = isinstance(exc, ArchivistError)
                log.log(logging.INFO if ours else logging.ERROR, "call %s failed", method, exc_info=not ours)
                message = {"error": exc}
            finally:
                with busy_lock:
                    busy[user.name] -= 1
                    running.pop(key, None)
            try:
                if spec.audited:  # on record before the caller hears the outcome
                    audit.record(user.name, method, collection, said, outcome, address)
            except OSError:
                log.exception("cannot write the audit log: %s %s on %r by %s", method, outcome, collection, user.name)
            finally:
                put(message)
                put(None)

        calls.submit(work)
        return messages

    async def _stream(user: User, first: Message, messages: asyncio.Queue[Message | None],
                      cancel: CancelToken) -> AsyncIterator[str]:
        finished = False
        try:
            message: Message | None = first
            while message is not None:
                yield _line(user, message)
                message = await messages.get()
            finished = True
        finally:
            if not finished:  # the client went away or pressed Stop
                cancel.cancel()

    @app.post("/v1/uploads")
    async def uploads_route(request: Request, user: Caller) -> dict[str, list[str]]:
        """Which of the user's files (path on their machine: content hash) the server lacks; the
        copies of files gone from the folders they name are deleted."""
        body = await body_of(request, config.max_body_kb * 64)  # a folder of a hundred thousand files
        collection, files, folders = body.get("collection"), body.get("files", {}), body.get("folders", [])
        if not isinstance(collection, str) or not _strings(files, _MAX_FILES) or not _strings(folders, _MAX_FILES):
            raise BadCall(f"uploads: collection is a string, files an object of at most {_MAX_FILES:,} names and "
                          f"hashes, folders a list of at most {_MAX_FILES:,} names")
        await require_upload(user, collection, request)
        copies = {}
        for name in files:  # type: ignore[union-attr]
            with contextlib.suppress(AccessDenied):  # a name this server cannot keep: not asked for, reported by the ingest
                copies[name] = uploads.copy_of(user.name, name)
        if len(set(copies.values())) < len(copies):
            raise BadCall("uploads: two of the names are one file")
        with busy_lock:  # hashing is work: it counts among the user's calls
            take_slot(user)
        try:
            needed = await asyncio.get_running_loop().run_in_executor(
                calls, _needed, user, copies, dict(files), list(folders))  # type: ignore[arg-type]
        finally:
            with busy_lock:
                busy[user.name] -= 1
        return {"needed": needed}

    def _needed(user: User, copies: dict[str, Path], files: dict[str, str], folders: list[str]) -> list[str]:
        kept = set(copies.values())
        for folder in folders:
            try:
                for copy in uploads.copy_of(user.name, folder).rglob("*"):
                    if copy.is_file() and copy not in kept and not copy.name.startswith(_PARTIAL):
                        copy.unlink(missing_ok=True)  # another request of the user's may be at work here too
            except (AccessDenied, OSError) as exc:
                log.info("uploads of %s: left %r as it is (%s)", user.name, folder, exc)
        return [name for name, copy in copies.items() if hashes.of(copy) != files[name]]

    @app.put("/v1/upload")
    async def upload(request: Request, collection: str, path: str, user: Caller) -> dict[str, bool]:
        """Keep a file of the user's machine (``path``, as it names it) for ingesting into ``collection``."""
        _same_site(request)
        await require_upload(user, collection, request)
        target = uploads.copy_of(user.name, path)
        limit, size = config.max_upload_mb * 2**20, 0
        temporary = ""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=_PARTIAL)
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise Refusal(413, BadCall(f"{target.name} is over this server's upload limit of "
                                                   f"{config.max_upload_mb} MB"))
                    out.write(chunk)
            os.replace(temporary, target)
        except OSError as exc:  # a full disk, or a name this file system cannot hold
            raise Refusal(507, StoreUnavailable(f"the server cannot keep {target.name}: {exc.strerror}")) from None
        finally:
            if temporary and os.path.exists(temporary):
                os.unlink(temporary)
        return {"kept": True}

    async def require_upload(user: User, collection: str, request: Request) -> None:
        try:
            await asyncio.to_thread(policy.may_upload, user, collection)
        except AccessDenied as exc:
            refuse(user, "upload", collection, exc.reason, _address(request))
            raise

    @app.get("/v1/whoami")
    def whoami(user: Caller) -> dict[str, object]:
        return {"name": user.name, "admin": user.admin, "groups": sorted(user.groups)}

    @app.get("/v1/grants")
    def grants(collection: str, request: Request, user: Caller) -> list[list[str]]:
        require(user, collection, Role.OWNER, "grants", request)
        return [[subject, role.name.lower()] for subject, _, role in accounts.grants(collection)]

    @app.post("/v1/grant")
    async def grant(request: Request, user: Caller) -> dict[str, bool]:
        body = await body_of(request)
        subject, collection, role = body.get("name"), body.get("collection"), body.get("role")
        if not isinstance(subject, str) or not isinstance(collection, str) or not (role is None or isinstance(role, str)):
            raise BadCall("grant: name and collection are strings, role a string or null")
        if not subject.strip() or subject != subject.strip() or len(subject) > 200 or not subject.isprintable():
            raise BadCall(f"{_clip(subject)!r} is not a user's or a group's name")
        require(user, collection, Role.OWNER, "grant", request)
        if role is None:
            done = accounts.revoke(subject, collection)
        else:
            accounts.grant(subject, collection, Role.named(role))
            done = True
        audit.record(user.name, "grant" if role else "revoke", collection, f"{subject} {role or ''}".strip(),
                     "ok", _address(request))
        return {"changed": done}

    def require(user: User, collection: str, role: Role, action: str, request: Request) -> None:
        """``user`` holds ``role`` on ``collection``; a refusal is on the audit log as ``action``."""
        try:
            accounts.require(user, collection, role)
        except AccessDenied as exc:
            refuse(user, action, collection, exc.reason, _address(request))
            raise

    @app.post("/v1/cancel", status_code=204)
    async def cancel_route(request: Request, user: Caller) -> None:
        number = (await body_of(request)).get("id")
        token = running.get((user.name, number)) if isinstance(number, str) else None
        if token is not None:
            token.cancel()

    return app


def uvicorn_options() -> dict[str, object]:
    """How uvicorn must run this app: the peer's address is the socket's, never what an
    ``X-Forwarded-For`` header claims (uvicorn believes it from 127.0.0.1 by default, which would let
    any local process pose as the trusted proxy, and any client write the audit log's address)."""
    return {"proxy_headers": False, "forwarded_allow_ips": "", "server_header": False, "access_log": False}


async def _first(request: Request, messages: asyncio.Queue[Message | None], cancel: CancelToken) -> Message | None:
    """The call's first message; None, and the call told to stop, if the client goes away first."""
    getting = asyncio.ensure_future(messages.get())
    gone = asyncio.ensure_future(_disconnected(request))
    done, _ = await asyncio.wait({getting, gone}, return_when=asyncio.FIRST_COMPLETED)
    if getting in done:
        gone.cancel()
        return getting.result()
    getting.cancel()
    cancel.cancel()
    return None


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _same_site(request: Request) -> None:
    """A browser says where a request comes from; one sent by another site's page is refused."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise AccessDenied("a request from another web site's page.")


_PARTIAL = ".upload-"  # a file being received
_MAX_FILES = 100_000  # names in one question of which files the server lacks


def _strings(value: object, limit: int) -> bool:
    if isinstance(value, dict):
        return len(value) <= limit and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return isinstance(value, list) and len(value) <= limit and all(isinstance(v, str) for v in value)


def _clip(text: str, limit: int = 100) -> str:
    return text[:limit] + ("…" if len(text) > limit else "")


class _Hashes:
    """Content hashes of uploaded copies, kept while a copy's size and time stay the same: asking
    which files the server lacks costs a file's hashing once, not once per question."""

    def __init__(self, keep: int = 100_000) -> None:
        self._known: dict[Path, tuple[int, int, str]] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def of(self, path: Path) -> str:
        """The copy's content hash, or "" when there is no such file."""
        try:
            stat = path.stat()
        except OSError:
            return ""
        if not S_ISREG(stat.st_mode):
            return ""
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        try:
            digest = content_hash(path)
        except OSError:  # gone or unreadable since: the client sends it again
            return ""
        with self._lock:
            if len(self._known) >= self._keep:
                self._known.clear()
            self._known[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest


def _address(request: Request) -> str:
    """The socket peer's address: the server is run without trusting forwarded headers, so this is
    who connected, never what a header claims. "unix" for a connection on the ``--uds`` socket; ""
    when the peer is unknown, which no ``proxies`` entry can match."""
    if request.client is not None:
        return request.client.host
    server = request.scope.get("server")
    return "unix" if isinstance(server, tuple) and isinstance(server[0], str) and server[1] is None else ""


_REFUSALS_A_MINUTE = 30  # audit lines of refusals one user may cause a minute, whatever they vary


class _Throttle:
    """Lets ``budget`` events per key through a minute (one by default), and says how many were
    held back since."""

    def __init__(self, every: float = 60.0, keys: int = 10_000) -> None:
        self._every = every
        self._keys = keys
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}  # (window start, let through, held)
        self._lock = threading.Lock()

    def admit(self, who: str, what: str, budget: int = 1) -> int | None:
        """None to hold this one back; else how many were held back before it."""
        now, key = time.monotonic(), (who, what)
        with self._lock:
            start, passed, held = self._seen.get(key, (float("-inf"), 0, 0))
            if now - start < self._every and passed >= budget:
                self._seen[key] = (start, passed, held + 1)
                return None
            if now - start >= self._every:
                if len(self._seen) >= self._keys:
                    self._seen.clear()
                start, passed = now, 0
            self._seen[key] = (start, passed + 1, 0)
            return held
