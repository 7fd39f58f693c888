"""``GET /v1/events``: what changed, pushed to each signed-in user's clients as server-sent events,
so that a desktop need not poll.

    GET /v1/events    text/event-stream: ``data: {"kind": "documents", "collection": C}`` when C's
                      documents (or its name, or the list of collections) change, ``{"kind":
                      "conversations", "collection": C}`` when one of the user's own conversations in C
                      does, ``{"kind": "model"}`` when the model's state does; a ``: heartbeat`` comment
                      every 15 s, so that a proxy keeps the connection open

Each event is checked against its user's rights as it is sent (their token and grants read again at
each event and heartbeat): a user never hears of a collection they cannot read, nor of anyone else's
conversations, and a stream ends when its token is revoked. An event says only *what* changed; a client
asks for the rest through the calls, which check rights as always.

Where events come from: each replica publishes one after every state-changing call it serves (an
observer around ``/v1/call``), and a watcher notices the store's generation moving for changes made
outside the calls (a followed folder, an administrator's command). With a Redis (``cache_redis_url``,
which the replicas share already) a replica publishes on a Redis channel too, and each replica forwards
what the others publish to its own clients; a Redis that cannot be reached costs only that: the replica
goes on with its own events, says so once in the log, and tries Redis again every few seconds.
"""

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import ArchivistError
from rag.errors import NotSignedIn, TooBusy
from rag.knowledge_base import KnowledgeBase
from rag.service.dispatch import OFFERED
from server.accounts import Accounts, User
from server.refusals import Refusal
from server.sign_in import SignIn

log = logging.getLogger(__name__)

EVENTS, CALL = "/v1/events", "/v1/call"
HEARTBEAT = 15.0  # seconds between two comments on an idle stream (proxies close one silent for 60 s)
WATCH_EVERY = 2.0  # seconds between two looks at the store's generations, while someone listens
RETRY_EVERY = 5.0  # seconds before a replica tries a Redis that failed again

DOCUMENTS, CONVERSATIONS, MODEL = "documents", "conversations", "model"
# What each call changes when it succeeds (a call not named here changes nothing a client shows).
_CHANGES = {
    **dict.fromkeys(("ingest", "remove", "follow", "unfollow", "reembed", "set_adapter", "create_collection",
                     "delete_collection", "rename_collection"), DOCUMENTS),
    **dict.fromkeys(("new_conversation", "rename_conversation", "delete_conversation", "ask"), CONVERSATIONS),
    **dict.fromkeys(("unload_model", "download_model"), MODEL),
}
_LONGEST_BODY = 4 * 2**20  # what the observer keeps of a call's body to read its name (the server refuses more)
STREAMS_PER_USER = 16  # one user's open streams (a desktop holds one; each browser tab might)
_FIELDS = ("collection", "user", "origin", "fingerprint")  # a Change's, besides its kind
_QUEUED = 1000  # events waiting for one slow client; past that it misses some (its safety poll catches up)


@dataclass(frozen=True)
class Change:
    """Something a client shows changed. ``user`` (whose conversations), ``origin`` (the replica that
    published it) and ``fingerprint`` (the collection's, after the change: "" for one gone) stay on the
    server: a client is sent ``kind`` and ``collection`` alone."""

    kind: str
    collection: str = ""
    user: str = ""
    origin: str = ""
    fingerprint: str = ""

    def shown(self) -> str:
        """The event as a client receives it: one ``data:`` line and a blank one."""
        said = {"kind": self.kind, **({"collection": self.collection} if self.collection else {})}
        return f"data: {json.dumps(said)}\n\n"


class _Hub:
    """This replica's listeners: one queue per open stream, each on the event loop that reads it."""

    def __init__(self) -> None:
        self._queues: dict[asyncio.Queue[Change], tuple[asyncio.AbstractEventLoop, str]] = {}
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return bool(self._queues)

    def open_for(self, name: str) -> int:
        """How many streams the user called ``name`` has open here."""
        with self._lock:
            return sum(1 for _, user in self._queues.values() if user == name)

    def subscribe(self, name: str) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(_QUEUED)
        with self._lock:
            self._queues[queue] = (asyncio.get_running_loop(), name)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        with self._lock:
            self._queues.pop(queue, None)

    def deliver(self, change: Change) -> None:
        """Hand ``change`` to every open stream; from any thread."""
        with self._lock:
            queues = list(self._queues.items())
        for queue, (loop, _) in queues:
            with contextlib.suppress(RuntimeError):  # that loop has closed: its stream is gone
                loop.call_soon_threadsafe(_offer, queue, change)


def _offer(queue: asyncio.Queue[Change], change: Change) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a client this far behind refreshes on its own
        queue.put_nowait(change)


class _RedisBus:
    """The replicas' channel in Redis: ``publish`` sends a change to all of them; a thread forwards
    what the others publish to ``deliver``. Never raises: a Redis that fails is logged once, and tried
    again every ``retry_every`` seconds."""

    def __init__(self, url: str, origin: str, deliver: Callable[[Change], None], retry_every: float) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0,
                                           retry=Retry(NoBackoff(), 0), health_check_interval=15)
        self.channel = f"archivist:events:{self._redis.connection_pool.connection_kwargs.get('db', 0)}"
        self._where = _without_password(url)
        self._origin = origin
        self._deliver = deliver
        self._retry_every = retry_every
        self._failed_at = 0.0  # when a publish last failed (0: it did not)
        self._down = False
        self._down_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="events-redis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(self, change: Change) -> None:
        """Send ``change`` to every replica's subscriber (this one's ignores its own)."""
        if self._failed_at and time.monotonic() - self._failed_at < self._retry_every:
            return  # down a moment ago: no waiting on it at each change
        try:
            self._redis.publish(self.channel, json.dumps(asdict(change)))
            self._failed_at = 0.0
        except self._errors as exc:
            self._failed_at = time.monotonic()
            self._fell(exc)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._redis.pubsub(ignore_subscribe_messages=True) as subscription:
                    subscription.subscribe(self.channel)
                    self._back()
                    while not self._stop.is_set():
                        message = subscription.get_message(timeout=1.0)
                        if message is not None and message.get("type") == "message":
                            self._received(message["data"])
            except self._errors as exc:
                self._fell(exc)
                self._stop.wait(self._retry_every)

    def _received(self, data: bytes | str) -> None:
        try:
            fields = json.loads(data)
            change = Change(**{name: str(fields.get(name, "")) for name in _FIELDS}, kind=str(fields["kind"]))
        except (ValueError, KeyError, TypeError):
            log.warning("a message on %s is not an event: %.200r", self.channel, data)
            return
        if change.origin != self._origin:  # this replica delivered its own already
            self._deliver(change)

    def _fell(self, exc: Exception) -> None:
        with self._down_lock:
            was, self._down = self._down, True
        if not was:
            log.warning("Redis at %s did not answer (%s): events reach this replica's own clients alone, "
                        "trying it again every %g s", self._where, exc, self._retry_every)

    def _back(self) -> None:
        with self._down_lock:
            was, self._down = self._down, False
        if was:
            log.info("Redis at %s answers again: events reach every replica's clients", self._where)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._redis.close()


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url


class Events:
    """Every change a client should hear of, from this replica and (through Redis) the others,
    handed to the streams open here."""

    def __init__(self, kb: KnowledgeBase, accounts: Accounts, redis_url: str = "", watch_every: float = WATCH_EVERY,
                 retry_every: float = RETRY_EVERY) -> None:
        self.kb = kb
        self.accounts = accounts
        self.origin = uuid.uuid4().hex
        self.hub = _Hub()
        self._bus = _RedisBus(redis_url, self.origin, self._heard, retry_every) if redis_url else None
        self._watch_every = watch_every
        self._seen: dict[str, str] | None = None  # each collection's id:generation at the last look
        # Each collection an event named since the last look, with its fingerprint after that change: the
        # watcher says nothing of a change already told (and tells of any made since).
        self._told: dict[str, str] = {}
        self._told_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="events-watch", daemon=True)
        kb.add_listener(lambda _status: self.hub.deliver(Change(MODEL)))  # this replica's model

    def start(self) -> None:
        if self._bus is not None:
            self._bus.start()
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._bus is not None:
            self._bus.close()

    def publish(self, change: Change) -> None:
        """Tell this replica's streams of ``change`` at once, and the other replicas' through Redis."""
        change = replace(change, origin=self.origin)
        self._heard(change)
        if self._bus is not None:
            self._bus.publish(change)

    def _heard(self, change: Change) -> None:
        if change.kind == DOCUMENTS:
            with self._told_lock:
                self._told[change.collection] = change.fingerprint
        self.hub.deliver(change)

    def fingerprint(self, collection: str) -> str:
        """``collection``'s fingerprint now; "" when it is gone (or the store cannot say)."""
        try:
            return self.kb.fingerprint(collection)
        except ArchivistError:
            return ""

    def may_see(self, user: User, change: Change) -> bool:
        """Whether ``user`` may hear of ``change``: a collection they may read, their own conversations."""
        if change.kind == MODEL:
            return True
        if change.kind == CONVERSATIONS and change.user != user.name:
            return False
        return bool(change.collection) and self.accounts.role(user, change.collection) is not None

    def _watch(self) -> None:
        """Changes made outside this replica's calls: every ``watch_every`` seconds while a stream is open,
        each collection's generation; one that moved (or a collection made, renamed or gone) is an event
        here (every replica watches for itself, so these go to no other)."""
        while not self._stop.wait(self._watch_every):
            if not self.hub.listening:
                self._seen = None
                continue
            try:
                now = {info.name: self.kb.fingerprint(info.name) for info in self.kb.collections()}
            except ArchivistError as exc:  # the store is away: the next look tries again
                log.info("cannot look for changes in the store: %s", exc)
                continue
            with self._told_lock:
                told, self._told = self._told, {}
            if self._seen is not None:
                for name in sorted(set(now) | set(self._seen)):
                    if now.get(name) != self._seen.get(name) and told.get(name) != now.get(name, ""):
                        self.hub.deliver(Change(DOCUMENTS, name, origin=self.origin))
            self._seen = now


class _Observer:
    """ASGI middleware around ``/v1/call``: after a call that changes something ends well, the change is
    published. It reads the call's name and collection from the body the call itself checked."""

    def __init__(self, app: ASGIApp, events: Events, sign_in: SignIn) -> None:
        self.app = app
        self.events = events
        self.sign_in = sign_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CALL or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status, ended = 0, False

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= _LONGEST_BODY:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        await self.app(scope, receiving, sending)
        if status == 200 and ended:
            for change in await self._changes(Request(scope), bytes(body)):
                await asyncio.to_thread(self.events.publish, change)

    async def _changes(self, request: Request, body: bytes) -> list[Change]:
        """What the call in ``body`` changed (nothing for a call that changes nothing)."""
        try:
            sent = json.loads(body)
            name, args = sent["call"], sent.get("args", {})
            kind, spec = _CHANGES[name], OFFERED[name]
        except (ValueError, KeyError, TypeError):
            return []
        named = [args.get(spec.collection)] if spec.collection and isinstance(args, dict) else []
        if name == "rename_collection" and isinstance(args, dict):
            named.append(args.get("new_name"))
        collections = [c for c in named if isinstance(c, str)]
        if kind == MODEL:
            return [Change(MODEL)]
        user = ""
        if kind == CONVERSATIONS:
            try:
                user = (await self.sign_in.user(request)).name
            except NotSignedIn:  # revoked since the call began: nobody to tell
                return []
        if kind == DOCUMENTS:  # what the watchers compare with: they say nothing more of this change
            return [Change(kind, c, fingerprint=await asyncio.to_thread(self.events.fingerprint, c)) for c in collections]
        return [Change(kind, c, user) for c in collections]


def add_events(app: FastAPI, sign_in: SignIn, kb: KnowledgeBase, accounts: Accounts, redis_url: str = "",
               heartbeat: float = HEARTBEAT, watch_every: float = WATCH_EVERY) -> Events:
    """Give ``app`` its ``/v1/events`` stream and the observer that feeds it; its Redis, if ``redis_url``,
    is where the replicas meet. Call it before the app serves (it adds a middleware)."""
    events = Events(kb, accounts, redis_url, watch_every)
    app.add_middleware(_Observer, events=events, sign_in=sign_in)
    served = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, object] | None]:
        events.start()
        try:
            async with served(app) as state:
                yield state
        finally:
            events.close()

    app.router.lifespan_context = lifespan  # type: ignore[assignment]  # the served app's state, passed on as it is
    Caller = Annotated[User, Depends(sign_in.user)]

    @app.get(EVENTS)
    async def events_route(request: Request, user: Caller) -> StreamingResponse:
        if events.hub.open_for(user.name) >= STREAMS_PER_USER:
            raise Refusal(429, TooBusy(f"{user.name} has {STREAMS_PER_USER} event streams open; close one first"))
        return StreamingResponse(_stream(request, user, events, sign_in, heartbeat), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return events


async def _stream(request: Request, first: User, events: Events, sign_in: SignIn,
                  heartbeat: float) -> AsyncIterator[str]:
    """One client's events, each checked against the rights its user holds at that moment; a comment every
    ``heartbeat`` seconds without one. Ends when the client goes or its sign-in stops being valid."""
    queue = events.hub.subscribe(first.name)
    try:
        yield ": connected\n\n"
        while True:
            try:
                change: Change | None = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                change = None
            try:
                user = await sign_in.user(request)  # a revoked token, a user removed from a group: now
            except NotSignedIn:
                return
            if change is None:
                yield ": heartbeat\n\n"
            elif await asyncio.to_thread(events.may_see, user, change):
                yield change.shown()
    finally:
        events.hub.unsubscribe(queue)
