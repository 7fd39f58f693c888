"""``GET /v1/events``: what changed, pushed to each signed-in user's clients as server-sent events,
so that a desktop need not poll.

    GET /v1/events    text/event-stream: ``data: {"kind": "documents", "collection": C}`` when C's
                      documents (or its name, or the list of collections) change, ``{"kind":
                      "conversations", "collection": C}`` when one of the user's own conversations in C
                      does, ``{"kind": "model"}`` when the model's state does; a ``: heartbeat`` comment
                      15 s after the client last heard anything, so that a proxy keeps the connection open
                      (429 past 16 streams of one user, or 2,000 of everyone's, on one replica)

Each event is checked against its user's rights as it is sent (their token and grants read again at
each event and heartbeat): a user never hears of a collection they cannot read, nor of anyone else's
conversations, and a stream ends when its token is revoked. Nor does an event it may not hear move anything
it sees: its heartbeats keep their own time. An event says only *what* changed; a client asks for the rest
through the calls, which check rights as always.

Where events come from: each replica publishes one after every state-changing call it serves that ends
with a result (an observer around ``/v1/call``, naming the collection as the call read it from its
arguments), and a watcher notices the store's generation moving for changes made
outside the calls (a followed folder, an administrator's command). With a Redis (``cache_redis_url``,
which the replicas share already) a replica publishes on a Redis channel too, and each replica forwards
what the others publish to its own clients; a Redis that cannot be reached costs only that: the replica
goes on with its own events, says so once in the log, and tries Redis again every few seconds. A message
on that channel is checked for the shape ``publish`` gives it before anything is made of it.
"""

import asyncio
import contextlib
import json
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import ArchivistError
from rag.errors import AccessDenied, NotSignedIn, TooBusy
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from rag.service.dispatch import OFFERED
from server.accounts import Accounts, User
from server.event_bus import CONVERSATIONS, DOCUMENTS, MODEL, RETRY_EVERY, Change, RedisBus
from server.refusals import Refusal
from server.sign_in import SignIn

log = logging.getLogger(__name__)

EVENTS, CALL = "/v1/events", "/v1/call"
HEARTBEAT = 15.0  # seconds between two comments on an idle stream (proxies close one silent for 60 s)
WATCH_EVERY = 2.0  # seconds between two looks at the store's generations, while someone listens

# What each call changes when it succeeds (a call not named here changes nothing a client shows).
_CHANGES = {
    **dict.fromkeys(("ingest", "remove", "follow", "unfollow", "reembed", "set_adapter", "create_collection",
                     "delete_collection", "rename_collection"), DOCUMENTS),
    **dict.fromkeys(("new_conversation", "rename_conversation", "delete_conversation", "ask"), CONVERSATIONS),
    **dict.fromkeys(("unload_model", "download_model"), MODEL),
}
_LONGEST_BODY = 4 * 2**20  # what the observer keeps of a call's body to read its name (the server refuses more)
STREAMS_PER_USER = 16  # one user's open streams (a desktop holds one; each browser tab might)
STREAMS_IN_ALL = 2000  # every user's streams on this replica: many accounts must not hold all its connections
_QUEUED = 1000  # events waiting for one slow client; past that it misses some (its safety poll catches up)
_RESULT = re.compile(rb'\s*\{\s*"result"\s*:')  # how a call's answer ends when it went well (``codec.dumps``)


class _Listener:
    """One open stream's waiting changes, on the event loop that reads them. A change already waiting is
    not queued again: a flood of one change costs a slow client one event, not a thousand."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Change] = asyncio.Queue(_QUEUED)
        self._waiting: set[Change] = set()

    def offer(self, change: Change) -> None:
        """Queue ``change``, unless it waits already; on the listener's loop."""
        if change in self._waiting:
            return
        with contextlib.suppress(asyncio.QueueFull):  # a client this far behind refreshes on its own
            self._queue.put_nowait(change)
            self._waiting.add(change)

    async def next(self, timeout: float) -> Change | None:
        """The next change; None when none came within ``timeout`` seconds."""
        if self._queue.empty():
            try:
                change = await asyncio.wait_for(self._queue.get(), max(0.0, timeout))
            except TimeoutError:
                return None
        else:
            change = self._queue.get_nowait()
        self._waiting.discard(change)
        return change


class _Hub:
    """This replica's listeners: one per open stream, each on the event loop that reads it."""

    def __init__(self, per_user: int = STREAMS_PER_USER, in_all: int = STREAMS_IN_ALL) -> None:
        self._listeners: set[_Listener] = set()
        self._lock = threading.Lock()
        self._per_user = per_user
        self._in_all = in_all

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def open_for(self, name: str) -> int:
        """How many streams the user called ``name`` has open here."""
        with self._lock:
            return sum(1 for listener in self._listeners if listener.name == name)

    def subscribe(self, name: str) -> _Listener:
        """A listener for a new stream of ``name``'s; ``TooBusy`` when they, or everyone, hold as many as
        allowed. Counted and added at once: requests opened together cannot all pass the count."""
        listener = _Listener(name)
        with self._lock:
            if sum(1 for other in self._listeners if other.name == name) >= self._per_user:
                raise TooBusy(f"{name} has {self._per_user} event streams open; close one first")
            if len(self._listeners) >= self._in_all:
                raise TooBusy(f"this server has {self._in_all} event streams open; try again later")
            self._listeners.add(listener)
        return listener

    def unsubscribe(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def deliver(self, change: Change) -> None:
        """Hand ``change`` to every open stream that might show it; from any thread. What a stream is sent
        is the event alone, so a change is queued without its origin and fingerprint (and so coalesces)."""
        change = Change(change.kind, change.collection, change.user)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            if change.kind == CONVERSATIONS and change.user != listener.name:
                continue  # another user's conversations: not even a sign-in check for it
            with contextlib.suppress(RuntimeError):  # that loop has closed: its stream is gone
                listener.loop.call_soon_threadsafe(listener.offer, change)


class Events:
    """Every change a client should hear of, from this replica and (through Redis) the others,
    handed to the streams open here."""

    def __init__(self, kb: KnowledgeBase, accounts: Accounts, redis_url: str = "", watch_every: float = WATCH_EVERY,
                 retry_every: float = RETRY_EVERY) -> None:
        self.kb = kb
        self.accounts = accounts
        self.origin = uuid.uuid4().hex
        self.hub = _Hub()
        self._bus = RedisBus(redis_url, self.origin, self._heard, retry_every) if redis_url else None
        self._watch_every = watch_every
        self._seen: dict[str, str] | None = None  # each collection's id:generation at the last look
        # Each collection an event named since the last look, with its fingerprint after that change: the
        # watcher says nothing of a change already told (and tells of any made since).
        self._told: dict[str, str] = {}
        self._told_lock = threading.Lock()
        self._stop = threading.Event()
        self._serving = 0  # servers serving the app now (a test may serve one app on two sockets)
        self._watcher = threading.Thread(target=self._watch, name="events-watch", daemon=True)
        kb.add_listener(lambda _status: self.hub.deliver(Change(MODEL)))  # this replica's model

    def start(self) -> None:
        """Start the watcher and the Redis forwarder, once however many servers serve the app."""
        with self._told_lock:
            self._serving += 1
            if self._serving > 1:
                return
        if self._bus is not None:
            self._bus.start()
        self._watcher.start()

    def close(self) -> None:
        """Stop them when the last server serving the app stops."""
        with self._told_lock:
            self._serving -= 1
            if self._serving > 0:
                return
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
        answer = _Answer()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= _LONGEST_BODY:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                answer.read(message.get("body", b""))
                ended = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receiving, sending)
        # A call refused or failed is answered 200 too, its last line an error: only a result says it changed something.
        if status == 200 and ended and answer.succeeded:
            for change in await self._changes(Request(scope), bytes(body)):
                await asyncio.to_thread(self.events.publish, change)

    async def _changes(self, request: Request, body: bytes) -> list[Change]:
        """What the call in ``body`` changed (nothing for a call that changes nothing): its arguments read
        as ``server.calls`` read them, so that an event names the collection the call used, never another
        name the raw body also holds (``{"$map": [...]}`` arguments decode to the map alone)."""
        try:
            sent = json.loads(body)
            name = sent["call"]
            kind, spec = _CHANGES[name], OFFERED[name]
            args = spec.arguments(codec.decode(sent.get("args", {})))
        except (ArchivistError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
            return []  # not a call that ran (the call itself refused it)
        named = [args.get(spec.collection)] if spec.collection else []
        if name == "rename_collection":
            named.append(args.get("new_name"))
        # The store keeps a name stripped (a created or renamed collection's); no name it holds has spaces around it.
        collections = [c.strip() if name in ("create_collection", "rename_collection") else c
                       for c in named if isinstance(c, str)]
        if kind == MODEL:
            return [Change(MODEL)]
        user = ""
        if kind == CONVERSATIONS:
            try:
                user = (await self.sign_in.user(request)).name
            except (NotSignedIn, AccessDenied):  # revoked since the call began: nobody to tell
                return []
        if kind == DOCUMENTS:  # what the watchers compare with: they say nothing more of this change
            return [Change(kind, c, fingerprint=await asyncio.to_thread(self.events.fingerprint, c)) for c in collections]
        return [Change(kind, c, user) for c in collections]


class _Answer:
    """Whether a call's NDJSON answer, read a piece at a time, ended with a result rather than an error:
    the start of its last line is kept, nothing more."""

    _KEPT = 32

    def __init__(self) -> None:
        self._last = b""  # the start of the last whole line
        self._line = b""  # the start of the line being read

    def read(self, piece: bytes) -> None:
        lines = bytes(piece).split(b"\n")
        lines[0] = self._line + lines[0][:self._KEPT]
        for line in lines[:-1]:
            if line.strip():
                self._last = line[:self._KEPT]
        self._line = lines[-1][:self._KEPT]

    @property
    def succeeded(self) -> bool:
        last = self._line if self._line.strip() else self._last
        return _RESULT.match(last) is not None


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
        try:
            listener = events.hub.subscribe(user.name)
        except TooBusy as exc:
            raise Refusal(429, exc) from None
        return _EventResponse(listener, events.hub, _stream(request, listener, events, sign_in, heartbeat))

    return events


class _EventResponse(StreamingResponse):
    """The stream's response: its listener is let go however the response ends, even one whose client
    went before its first byte (when the stream's own body never starts)."""

    def __init__(self, listener: _Listener, hub: _Hub, content: AsyncIterator[str]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self._listener = listener
        self._hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.unsubscribe(self._listener)


async def _stream(request: Request, listener: _Listener, events: Events, sign_in: SignIn,
                  heartbeat: float) -> AsyncIterator[str]:
    """One client's events, each checked against the rights its user holds at that moment; a comment
    ``heartbeat`` seconds after the client last heard anything. Ends when the client goes or its sign-in
    stops being valid. Nothing the client sees moves with an event it may not hear of: not the heartbeat's
    time, nor the moment a stream whose sign-in ended stops."""
    loop = asyncio.get_running_loop()
    try:
        yield ": connected\n\n"
        said_at = loop.time()
        while True:
            change = await listener.next(said_at + heartbeat - loop.time())
            try:
                user = await sign_in.user(request)  # a revoked token, a user removed from a group: now
            except NotSignedIn:
                if change is not None:  # ended at the heartbeat's time, not this (perhaps unseen) event's
                    await asyncio.sleep(max(0.0, said_at + heartbeat - loop.time()))
                return
            if change is None:
                yield ": heartbeat\n\n"
            elif await asyncio.to_thread(events.may_see, user, change):
                yield change.shown()
            else:
                continue
            said_at = loop.time()
    finally:
        events.hub.unsubscribe(listener)
