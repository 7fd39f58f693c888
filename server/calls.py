"""Running a user's call of the knowledge base: the request read and checked against the facade's
signature, the call authorized and run on a worker thread with that user's view of the knowledge
base, its messages streamed back as NDJSON lines (as on the pipe), and the call stopped when its
user cancels it or goes away. Each audited call is on the audit log before its user hears the outcome.
"""

import asyncio
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from engine import ArchivistError, CancelToken
from rag.answering.ask import AskOptions
from rag.answering.conversations import Conversation
from rag.calls import Offered
from rag.errors import AccessDenied, BadCall
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from rag.service.dispatch import OFFERED, call
from server.accounts import User
from server.audit import AuditLog, clipped
from server.config import ServerConfig
from server.incoming import address_of, json_body
from server.policy import Policy
from server.refusals import Refusals
from server.slots import Slots
from server.uploads import Uploads, user_id

log = logging.getLogger(__name__)

Message = dict[str, object]
_NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class _Running:
    """One call as it runs: whose, what, and what its audit line will say."""

    user: User
    spec: Offered
    args: dict[str, object]  # checked and authorized: the paths are the server's files they stand for
    number: str  # the call's id, as its user names it to cancel it
    address: str
    said: str  # the audit line's detail, as the user named things
    cancel: CancelToken


class Calls:
    """``/v1/call`` and ``/v1/cancel``: every user's calls, each on a worker thread."""

    def __init__(self, kb: KnowledgeBase, policy: Policy, uploads: Uploads, audit: AuditLog, refusals: Refusals,
                 slots: Slots, workers: Executor, config: ServerConfig) -> None:
        self._kb = kb
        self._policy = policy
        self._uploads = uploads
        self._audit = audit
        self._refusals = refusals
        self._slots = slots
        self._workers = workers
        self._config = config
        self._views: dict[str, KnowledgeBase] = {}
        self._views_lock = threading.Lock()

    async def run(self, request: Request, user: User) -> Response:
        """Run the call the request names: one response when it answers at once, else a stream of
        its messages, one JSON line each."""
        address = address_of(request)
        number, spec, args = await self._read(request, user, address)
        said = audit_detail(spec, args, self._config.audit_questions) if spec.audited else ""  # as the user named things
        try:
            await asyncio.to_thread(self._policy.authorize, user, spec, args)
        except AccessDenied as exc:
            self._refusals.refuse(user, spec.name, self._policy.collection_of(spec, args), exc.reason, address)
            raise
        cancel = self._slots.take(user, number)
        running = _Running(user, spec, args, number, address, said, cancel)
        messages = self._start(running)
        first = await _first(request, messages, cancel)
        if first is None or "event" not in first:  # answered at once (or nobody is listening): one response
            return Response(self._line(user, first) if first else "", media_type=_NDJSON)
        return StreamingResponse(self._stream(user, first, messages, cancel), media_type=_NDJSON)

    async def cancel(self, request: Request, user: User) -> None:
        """Stop one of the user's own calls, named by its id."""
        number = (await json_body(request, self._config.max_body_kb)).get("id")
        if isinstance(number, str):
            self._slots.cancel(user, number)

    async def _read(self, request: Request, user: User, address: str) -> tuple[str, Offered, dict[str, object]]:
        """The call's id, what it calls, and its arguments checked against the facade's signature;
        a call the knowledge base does not offer is refused, and on the audit log."""
        body = await json_body(request, self._config.max_body_kb)
        number, method, raw = body.get("id"), body.get("call"), body.get("args", {})
        if not isinstance(number, str) or not 0 < len(number) <= 100:
            raise BadCall("a call needs an id: a string of at most 100 characters")
        if not isinstance(method, str) or method not in OFFERED:
            named = clipped(method if isinstance(method, str) else repr(method))
            self._refusals.refuse(user, "unknown call", "", repr(named), address)
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
        return number, spec, spec.arguments(decoded)

    def _view(self, user: User) -> KnowledgeBase:
        """The knowledge base as ``user`` sees it: their own conversations, everything else shared."""
        with self._views_lock:
            if user.name not in self._views:
                owned = self._policy.conversations.owned_by(user_id(user.name))
                self._views[user.name] = self._kb.with_conversations(owned)
            return self._views[user.name]

    def _start(self, running: _Running) -> asyncio.Queue[Message | None]:
        """Run the call on a worker thread; its messages arrive on the queue, then None."""
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue[Message | None] = asyncio.Queue()

        def put(message: Message | None) -> None:
            loop.call_soon_threadsafe(messages.put_nowait, message)

        self._workers.submit(self._work, running, put)
        return messages

    def _work(self, running: _Running, put: Callable[[Message | None], None]) -> None:
        """The call, on a worker thread: its events, then its result or error, then None, put on the
        queue; its slot given back and its audit line written before the outcome is put."""
        user, spec, args = running.user, running.spec, running.args
        collection = self._policy.collection_of(spec, args)
        outcome = "failed"
        try:
            self._policy.prepare(user, spec, args)
            deleted = self._policy.collection_id(collection) if spec.name == "delete_collection" else ""
            result = call(self._view(user), spec, dict(args), lambda event: put({"event": event}),  # checked above
                          running.cancel)
            message: Message = {"result": self._policy.result(user, spec, args, result, deleted)}
            outcome = "ok"
        except Exception as exc:  # every failure goes back to the caller, typed where ours
            ours = isinstance(exc, ArchivistError)
            log.log(logging.INFO if ours else logging.ERROR, "call %s failed", spec.name, exc_info=not ours)
            message = {"error": exc}
        finally:
            self._slots.give_back(user, running.number)
        try:
            if spec.audited:  # on record before the caller hears the outcome
                self._audit.record(user.name, spec.name, collection, running.said, outcome, running.address)
        except OSError:
            log.exception("cannot write the audit log: %s %s on %r by %s", spec.name, outcome, collection, user.name)
        finally:
            put(message)
            put(None)

    async def _stream(self, user: User, first: Message, messages: asyncio.Queue[Message | None],
                      cancel: CancelToken) -> AsyncIterator[str]:
        finished = False
        try:
            message: Message | None = first
            while message is not None:
                yield self._line(user, message)
                message = await messages.get()
            finished = True
        finally:
            if not finished:  # the client went away or pressed Stop
                cancel.cancel()

    def _line(self, user: User, message: Message) -> str:
        """One message as one JSON line, with each upload named as ``user`` sees it (a kept
        conversation holds its sources' paths as text: those too)."""
        def shown(path: Path) -> Path:
            return self._uploads.shown(user.name, path)

        if isinstance(message.get("result"), Conversation):
            message = {**message, "result": _paths_shown(message["result"], shown)}
        return codec.dumps(message, shown) + "\n"


def _paths_shown(conversation: Conversation, shown: Callable[[Path], Path]) -> Conversation:
    """A copy of ``conversation`` whose citations and sources name each file as ``shown`` does."""
    def mapped(items: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**item, "path": str(shown(Path(str(item["path"]))))} if item.get("path") else item for item in items]

    turns = [dataclasses.replace(t, citations=mapped(t.citations), sources=mapped(t.sources)) for t in conversation.turns]
    return dataclasses.replace(conversation, turns=turns)


def audit_detail(spec: Offered, args: dict[str, object], questions: bool) -> str:
    """What the audit line of a call says it was about: the question asked (unless ``questions`` is
    off; its first 2,000 characters, so a line stays a line), else the arguments that name things, each clipped."""
    if spec.name == "ask":
        options = args.get("options")
        mode = f" (schema {options.schema.name!r})" if isinstance(options, AskOptions) and options.schema else ""
        return (clipped(repr(args.get("question", "")), 2000) if questions else "(question not kept)") + mode

    def said(value: object) -> str:
        if isinstance(value, list | tuple):
            return (f"({len(value)}) " if len(value) > 1 else "") + ", ".join(said(v) for v in value)
        return clipped(str(value), 300) if isinstance(value, Path | str) else clipped(repr(value), 300)

    shown = [f"{k} {said(v)}" for k, v in args.items() if k not in ("collection", "name", "options") and v]
    return clipped("; ".join(shown), 1000)


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
