"""``archivist-server``'s web app: the knowledge-base protocol of ``rag.service`` over HTTP,
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

401: no token, a wrong, revoked or expired one, or a proxy header from an address not listed.
403: signed in, but without the role the call needs. The body is ``{"detail": "<plain words>",
"error": <the typed error in rag.codec's JSON>}``.
A collection the user cannot read is left out of their list; each one's conversations are
their own; the answer cache is shared, and only reachable through a collection one may read.
"""


import asyncio
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine import ArchivistError, CancelToken
from rag import codec
from rag.ask import AskOptions
from rag.conversations import ConversationStore
from rag.errors import AccessDenied, KnowledgeBaseError, NotSignedIn
from rag.extract import extract
from rag.ingest import content_hash
from rag.knowledge_base import KnowledgeBase
from rag.service import CALLS, call
from rag.store import CollectionInfo
from server.accounts import Accounts, Role, User
from server.audit import AuditLog

log = logging.getLogger(__name__)

# The role each call needs on the collection its argument names ("collection", or "name").
_NEEDS: dict[str, Role] = {
    **dict.fromkeys([
        "check_embedder", "status", "fingerprint", "search", "document_passages", "ask", "extract", "checkup",
        "run_checkup", "followed", "list_conversations", "get_conversation", "new_conversation",
        "rename_conversation", "delete_conversation", "export_conversation",
    ], Role.READER),
    **dict.fromkeys(["ingest", "remove", "follow", "unfollow", "reembed", "add_check", "remove_check"], Role.EDITOR),
    **dict.fromkeys(["rename_collection", "set_adapter", "delete_collection"], Role.OWNER),
}
_ANYONE = frozenset({"collections", "create_collection", "revision", "model_status", "embedder_status", "cache_stats"})
_ADMIN = frozenset({"unload_model", "clear_cache", "download_model"})
# Calls the audit log keeps (reads that change nothing, like search, are not kept).
_AUDITED = frozenset(_NEEDS) - {
    "check_embedder", "status", "fingerprint", "search", "document_passages", "checkup", "followed",
    "list_conversations", "get_conversation", "export_conversation", "rename_conversation",
} | {"create_collection"} | _ADMIN
# Arguments that name a file or folder on the server: only inside the folders it offers.
_SERVER_PATHS = {"ingest": "paths", "follow": "folder", "set_adapter": "adapter"}
assert set(_NEEDS) | _ANYONE | _ADMIN == CALLS, "every call of the facade needs a rule"


@dataclass
class ServerConfig:
    """What the administrator decides (``[server]`` in the server's settings file)."""

    folders: list[Path] = field(default_factory=list)  # server folders editors may index and follow
    proxies: frozenset[str] = frozenset()  # addresses of the intranet's authenticating reverse proxy
    proxy_header: str = "X-Remote-User"
    audit_questions: bool = True  # False: the audit log says "asked" without the question
    anyone_creates: bool = False  # True: any user may make a collection (and owns it); else administrators
    home: Path = Path(".")

    max_upload_mb: int = 512
    watches_folders: bool = True  # False on all but one of several replicas sharing one store

    def uploads(self, user: User) -> Path:
        """Where ``user``'s uploaded files are kept, each at its path on their own machine."""
        return self.home / "uploads" / _slug(user.name)

    def uploaded(self, user: User, client_path: str) -> Path:
        """Where ``user``'s file ``client_path`` (as their machine names it) is kept on the server."""
        parts = [p for p in client_path.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        return self.uploads(user).joinpath(*parts)

    def client_path(self, user: User, path: Path) -> Path:
        """The name ``user``'s machine has for ``path``, when it is one of their uploads (else ``path``)."""
        root = self.uploads(user)
        if not path.is_relative_to(root):
            return path
        parts = path.relative_to(root).parts
        if parts and parts[0].endswith(":"):  # a Windows drive
            return Path(parts[0] + "\\" + "\\".join(parts[1:]))
        return Path("/" + "/".join(parts))


def _slug(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def create_app(kb: KnowledgeBase, accounts: Accounts, audit: AuditLog, config: ServerConfig) -> FastAPI:
    """The web app over one knowledge base; every request is served on behalf of a user."""
    app = FastAPI(title="Archivist team server", docs_url=None, redoc_url=None, openapi_url=None)
    running: dict[str, tuple[str, CancelToken]] = {}
    # Calls run on threads that live on: a thread's first embedding sets up torch's own threads (milliseconds).
    calls = ThreadPoolExecutor(max_workers=64, thread_name_prefix="call")
    views: dict[str, KnowledgeBase] = {}
    views_lock = threading.Lock()

    def view(user: User) -> KnowledgeBase:
        """The knowledge base as ``user`` sees it: their own conversations, everything else shared."""
        with views_lock:
            if user.name not in views:
                folder = config.home / "conversations" / _slug(user.name)
                views[user.name] = kb.with_conversations(ConversationStore(folder))
            return views[user.name]

    def refused(status: int) -> Callable[[Request, Exception], JSONResponse]:
        def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc), "error": codec.encode(exc)}, status_code=status)
        return handler

    app.add_exception_handler(NotSignedIn, refused(401))
    app.add_exception_handler(AccessDenied, refused(403))
    app.add_exception_handler(KnowledgeBaseError, refused(400))

    async def signed_in(request: Request) -> User:  # on the event loop: a lookup of microseconds
        address = _address(request)
        vouched = request.headers.get(config.proxy_header)
        try:
            if vouched is not None:
                if address not in config.proxies:
                    raise NotSignedIn(f"the {config.proxy_header} header came from {address}, which is not a trusted proxy.")
                if not vouched.strip():
                    raise NotSignedIn(f"the proxy sent an empty {config.proxy_header} header.")
                return accounts.user(vouched.strip())
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            return accounts.authenticate(token.strip() if scheme.lower() == "bearer" else "")
        except NotSignedIn as exc:
            audit.record("?", "sign-in", detail=exc.reason, outcome="refused", address=address)
            raise

    Caller = Annotated[User, Depends(signed_in)]

    def authorize(user: User, method: str, args: dict[str, Any], address: str) -> None:
        collection = str(args.get("collection", args.get("name", "")))
        try:
            if method not in CALLS:
                raise AccessDenied(f"{method!r} is not something the knowledge base offers.")
            if method in _ADMIN and not user.admin:
                raise AccessDenied(f"only an administrator may {method.replace('_', ' ')}.")
            if method == "create_collection" and not (user.admin or config.anyone_creates):
                raise AccessDenied("only an administrator may create a collection on this server.")
            if method in _NEEDS:
                accounts.require(user, collection, _NEEDS[method])
            _read_uploads(user, method, args, config)
            if method in _SERVER_PATHS:
                _check_server_paths(args.get(_SERVER_PATHS[method]), [*config.folders, config.uploads(user)])
        except AccessDenied as exc:
            audit.record(user.name, method, collection, exc.reason, "refused", address)
            raise

    def answer(user: User, method: str, result: object, args: dict[str, Any]) -> object:
        """The result as ``user`` may see it."""
        if method == "collections" and isinstance(result, list):
            names = set(accounts.readable(user, [c.name for c in result if isinstance(c, CollectionInfo)]))
            return [c for c in result if isinstance(c, CollectionInfo) and c.name in names]
        if method == "revision":  # a digest: the string itself names every collection
            names = accounts.readable(user, [c.name for c in kb.collections()])
            seen = result if args.get("collection") in names else ""
            return hashlib.sha256(f"{','.join(names)}|{seen}".encode()).hexdigest()[:32]
        if method == "create_collection" and isinstance(result, CollectionInfo) and not user.admin:
            accounts.grant(user.name, result.name, Role.OWNER)
        if method == "rename_collection" and isinstance(result, CollectionInfo):
            accounts.rename_collection(str(args["name"]), result.name)
        if method == "delete_collection":
            accounts.forget_collection(str(args["name"]))
        return result

    def detail(method: str, args: dict[str, Any]) -> str:
        if method == "ask":
            options = args.get("options")
            mode = f" (schema {options.schema.name})" if isinstance(options, AskOptions) and options.schema else ""
            return (repr(args.get("question", "")) if config.audit_questions else "(question not kept)") + mode
        def said(value: object) -> str:
            if isinstance(value, list | tuple):
                return ", ".join(said(v) for v in value)
            return str(value) if isinstance(value, Path | str) else repr(value)

        shown = [f"{k} {said(v)}" for k, v in args.items() if k not in ("collection", "name", "options") and v]
        return "; ".join(shown)[:1000]

    @app.get("/v1/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/call")
    async def call_route(request: Request, user: Caller) -> Response:
        address = _address(request)
        try:
            body = await request.json()
            number, method, args = str(body["id"]), str(body["call"]), codec.decode(body.get("args") or {})
            if not isinstance(args, dict):
                raise TypeError("args must be an object")
        except (ValueError, KeyError, TypeError, ArchivistError) as exc:
            raise KnowledgeBaseError(f"not a call: {exc}") from exc
        said = detail(method, args) if method in _AUDITED else ""  # as the user named things
        authorize(user, method, args, address)
        cancel = CancelToken()
        running[number] = (user.name, cancel)
        messages = _start(user, method, args, cancel, address, said)
        first = await messages.get()
        if first is not None and "event" not in first:  # answered at once: one plain response
            running.pop(number, None)
            return Response(_line(user, first), media_type="application/x-ndjson")
        return StreamingResponse(_stream(user, first, messages, cancel, number), media_type="application/x-ndjson")

    def _line(user: User, message: dict[str, object]) -> str:
        return codec.dumps(message, lambda path: config.client_path(user, path)) + "\n"

    def _start(user: User, method: str, args: dict[str, Any], cancel: CancelToken, address: str, said: str
               ) -> asyncio.Queue[dict[str, object] | None]:
        """Run the call on a worker thread; its messages arrive on the queue, then None."""
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue[dict[str, object] | None] = asyncio.Queue()

        def put(message: dict[str, object] | None) -> None:
            loop.call_soon_threadsafe(messages.put_nowait, message)

        def work() -> None:
            collection = str(args.get("collection", args.get("name", "")))
            outcome = "failed"
            try:
                if method == "extract":  # the rows go back; the client writes its own file
                    rows = extract(view(user), str(args["collection"]), args["schema"],
                                   lambda progress: put({"event": progress}), cancel, str(args.get("effort", "low")))
                    result: object = 0
                    for result, row in enumerate(rows, 1):
                        put({"event": row})
                else:
                    result = call(view(user), method, dict(args), lambda event: put({"event": event}), cancel)
                message: dict[str, object] = {"result": answer(user, method, result, args)}
                outcome = "ok"
            except Exception as exc:
                ours = isinstance(exc, ArchivistError)
                log.log(logging.INFO if ours else logging.ERROR, "call %s failed", method, exc_info=not ours)
                message = {"error": exc}
            if method in _AUDITED:  # on record before the caller hears the outcome
                try:
                    audit.record(user.name, method, collection, said, outcome, address)
                except OSError:
                    log.exception("cannot write the audit log: %s %s on %r by %s", method, outcome, collection, user.name)
            put(message)
            put(None)

        calls.submit(work)
        return messages

    async def _stream(user: User, first: dict[str, object] | None, messages: asyncio.Queue[dict[str, object] | None],
                      cancel: CancelToken, number: str) -> AsyncIterator[str]:
        finished = False
        try:
            message = first
            while message is not None:
                yield _line(user, message)
                message = await messages.get()
            finished = True
        finally:
            running.pop(number, None)
            if not finished:  # the client went away or pressed Stop
                cancel.cancel()

    @app.post("/v1/uploads")
    async def uploads(request: Request, user: Caller) -> dict[str, list[str]]:
        """Which of the user's files (path on their machine: content hash) the server lacks; the
        copies of files gone from the folders they name are deleted."""
        body = await request.json()
        collection = str(body.get("collection", ""))
        require(user, collection, Role.EDITOR, "upload", request)
        files: dict[str, str] = {str(k): str(v) for k, v in dict(body.get("files", {})).items()}
        return {"needed": await asyncio.to_thread(_needed, user, files, [str(f) for f in body.get("folders", [])])}

    def _needed(user: User, files: dict[str, str], folders: list[str]) -> list[str]:
        kept = {config.uploaded(user, name) for name in files}
        for folder in folders:
            for copy in config.uploaded(user, folder).rglob("*"):
                if copy.is_file() and copy not in kept:
                    copy.unlink()
        return [name for name, digest in files.items()
                if not (copy := config.uploaded(user, name)).is_file() or content_hash(copy) != digest]

    @app.put("/v1/upload")
    async def upload(request: Request, collection: str, path: str, user: Caller) -> dict[str, str]:
        """Keep a file of the user's machine (``path``, as it names it) for ingesting into ``collection``."""
        require(user, collection, Role.EDITOR, "upload", request)
        target = config.uploaded(user, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        limit, size = config.max_upload_mb * 2**20, 0
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise KnowledgeBaseError(f"{Path(path).name} is over this server's upload limit of "
                                                 f"{config.max_upload_mb} MB.")
                    out.write(chunk)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return {"path": str(target)}

    @app.get("/v1/whoami")
    def whoami(user: Caller) -> dict[str, object]:
        return {"name": user.name, "admin": user.admin, "groups": sorted(user.groups)}

    @app.get("/v1/grants")
    def grants(collection: str, request: Request, user: Caller) -> list[list[str]]:
        require(user, collection, Role.OWNER, "grants", request)
        return [[subject, role.name.lower()] for subject, _, role in accounts.grants(collection)]

    @app.post("/v1/grant")
    async def grant(request: Request, user: Caller) -> dict[str, bool]:
        body = await request.json()
        subject, collection = str(body.get("name", "")), str(body.get("collection", ""))
        require(user, collection, Role.OWNER, "grant", request)
        role = body.get("role")
        if role is None:
            done = accounts.revoke(subject, collection)
        else:
            accounts.grant(subject, collection, Role.named(str(role)))
            done = True
        audit.record(user.name, "grant" if role else "revoke", collection, f"{subject} {role or ''}".strip(),
                     "ok", _address(request))
        return {"changed": done}

    def require(user: User, collection: str, role: Role, action: str, request: Request) -> None:
        """``user`` holds ``role`` on ``collection``; a refusal is on the audit log as ``action``."""
        try:
            accounts.require(user, collection, role)
        except AccessDenied as exc:
            audit.record(user.name, action, collection, exc.reason, "refused", _address(request))
            raise

    @app.post("/v1/cancel", status_code=204)
    async def cancel_route(request: Request, user: Caller) -> None:
        number = str((await request.json()).get("id", ""))
        owner, token = running.get(number, ("", None))
        if token is not None and owner == user.name:
            token.cancel()

    return app


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _read_uploads(user: User, method: str, args: dict[str, Any], config: ServerConfig) -> None:
    """Paths on the user's machine that they uploaded stand for the uploaded copies, in place."""

    def mapped(path: object) -> object:
        if not isinstance(path, Path):
            return path
        copy = config.uploaded(user, path.as_posix())
        return copy if copy.exists() else path

    for name in ("paths", "path"):
        value = args.get(name)
        if isinstance(value, list | tuple):
            args[name] = [mapped(p) for p in value]
        elif isinstance(value, Path):
            args[name] = mapped(value)
    options = args.get("options")
    if isinstance(options, AskOptions) and options.paths:
        args["options"] = dataclasses.replace(options, paths=[mapped(p) for p in options.paths])


def _check_server_paths(value: object, roots: list[Path]) -> None:
    """``AccessDenied`` unless every path lies inside one of ``roots`` (the offered folders, the user's uploads)."""
    if value is None:
        return
    resolved_roots = [r.resolve() for r in roots]
    for path in value if isinstance(value, list | tuple) else [value]:
        resolved = Path(str(path)).resolve()
        if not any(resolved.is_relative_to(root) for root in resolved_roots):
            offered = ", ".join(str(r) for r in roots[:-1]) or "none"
            raise AccessDenied(f"{path} is not in a folder this server offers for indexing (offered: {offered}); "
                               "files of your own machine are sent to the server when you add them.")
