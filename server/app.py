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
    GET  /v1/events   text/event-stream of what changed (documents, conversations, the model), for the
                      signed-in user and only about collections they may read (``server.events``)
    GET  /            the page (``server.web``): sign-in, the reader; its own paths are /sign-in, /sign-out,
                      /static/..., /web/page (a cited PDF page as PNG) and /web/marks (the passage on it), and
                      /sign-in/oidc and its /callback (the company's identity provider, ``server.oidc``)

A browser signs in once, with its user's token or by the identity provider, and keeps a session sealed
with the server's key (``home/session.key``) in an HttpOnly, SameSite=Strict cookie (``server.session``):
it ends after ``oidc_session_hours``, at sign-out, or when its token is revoked; every path above also
accepts that cookie, from this site's own page only.

400: a body or arguments of the wrong shape (each call's arguments are checked against the facade's
signature before anything else looks at them). 401: no token, a wrong, revoked or expired one, or a
proxy header from a socket address not listed. 403: signed in, but without the role the call needs
(``server.policy``), or a request a browser sent from another site. 413: a body over the limit.
415: a body that is not ``application/json``. 429: too many calls of one user at once. The body is
``{"detail": "<plain words>", "error": <the typed error in rag.service.codec's JSON>}``.
A collection the user cannot read is left out of their list; each one's conversations are
their own; the answer cache is shared, and only reachable through a collection one may read.

Each job has its module: ``server.sign_in`` finds the user, ``server.incoming`` reads a request,
``server.calls`` runs and streams calls, ``server.slots`` counts each user's running calls,
``server.receiving`` takes in uploaded files, ``server.rights`` answers whoami and the grants,
``server.refusals`` answers refusals and keeps their audit lines few. This module only builds them
and gives each its paths.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from rag.answering.conversations import ConversationFiles, ConversationStore
from rag.knowledge_base import KnowledgeBase
from server.accounts import Accounts, User
from server.audit import AuditLog
from server.calls import Calls
from server.config import ServerConfig
from server.events import add_events
from server.policy import Policy
from server.receiving import Receiver
from server.refusals import Refusals, add_handlers
from server.rights import Rights
from server.session import SessionSeal
from server.sign_in import SignIn
from server.slots import Slots
from server.uploads import Uploads
from server.web import Pages, add_web

__all__ = ["ServerConfig", "create_app", "uvicorn_options"]


def create_app(kb: KnowledgeBase, accounts: Accounts, audit: AuditLog, config: ServerConfig,
               redis_url: str = "", conversations: ConversationStore | None = None) -> FastAPI:
    """The web app over one knowledge base; every request is served on behalf of a user. ``redis_url``:
    the Redis the replicas share, which carries each one's events to the others' clients.
    ``conversations``: every user's, each apart (default: ``home/conversations/<user id>/``)."""
    uploads = Uploads(config.home, root=config.uploads_folder, replica=config.replica)
    conversations = conversations or ConversationFiles(config.home / "conversations", by_owner=True)
    policy = Policy(kb, accounts, uploads, config.folders, config.anyone_creates, conversations)
    refusals = Refusals(audit)
    slots = Slots(config.max_calls_per_user)
    # Calls run on threads that live on: a thread's first embedding sets up torch's own threads (milliseconds).
    workers = ThreadPoolExecutor(max_workers=64, thread_name_prefix="call")
    app = FastAPI(title="Archivist team server", docs_url=None, redoc_url=None, openapi_url=None)
    add_handlers(app)
    seal = SessionSeal(config.home)
    sign_in = SignIn(accounts, config, refusals, seal)
    app.state.events = add_events(app, sign_in, kb, accounts, redis_url, config.events_heartbeat,
                                  config.events_watch_every)
    add_web(app, Pages(kb, accounts, uploads, sign_in, refusals, audit, seal, config))
    _add_routes(app, sign_in,
                Calls(kb, policy, uploads, audit, refusals, slots, workers, config),
                Receiver(uploads, policy, refusals, slots, workers, config),
                Rights(accounts, audit, refusals, config))
    return app


def _add_routes(app: FastAPI, sign_in: SignIn, calls: Calls, receiver: Receiver, rights: Rights) -> None:
    """The protocol's paths, each handed to the part whose job it is; all but health need a user."""
    Caller = Annotated[User, Depends(sign_in.user)]

    @app.get("/v1/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/call")
    async def call_route(request: Request, user: Caller) -> Response:
        return await calls.run(request, user)

    @app.post("/v1/cancel", status_code=204)
    async def cancel_route(request: Request, user: Caller) -> None:
        await calls.cancel(request, user)

    @app.post("/v1/uploads")
    async def uploads_route(request: Request, user: Caller) -> dict[str, list[str]]:
        return await receiver.needed(request, user)

    @app.put("/v1/upload")
    async def upload(request: Request, collection: str, path: str, user: Caller) -> dict[str, bool]:
        return await receiver.keep(request, user, collection, path)

    @app.get("/v1/whoami")
    def whoami(user: Caller) -> dict[str, object]:
        return rights.whoami(user)

    @app.get("/v1/grants")
    def grants(collection: str, request: Request, user: Caller) -> list[list[str]]:
        return rights.grants(request, user, collection)

    @app.post("/v1/grant")
    async def grant(request: Request, user: Caller) -> dict[str, bool]:
        return await rights.grant(request, user)


def uvicorn_options() -> dict[str, object]:
    """How uvicorn must run this app: the peer's address is the socket's, never what an
    ``X-Forwarded-For`` header claims (uvicorn believes it from 127.0.0.1 by default, which would let
    any local process pose as the trusted proxy, and any client write the audit log's address)."""
    return {"proxy_headers": False, "forwarded_allow_ips": "", "server_header": False, "access_log": False}
