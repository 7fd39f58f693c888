"""How the team server's replicas tell each other what changed: a ``Change``, and the Redis channel
that carries it (``server.events`` hands what arrives to the streams open on this replica).

A message on the channel is input like any other: whoever can write to the Redis can write to it. It
is checked for the shape ``publish`` gives it, and its size, before anything is made of it; one that
fails the check is logged and dropped, and the forwarder lives on.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

DOCUMENTS, CONVERSATIONS, MODEL = "documents", "conversations", "model"
RETRY_EVERY = 5.0  # seconds before a replica tries a Redis that failed again
_FIELDS = ("kind", "collection", "user", "origin", "fingerprint")  # a Change's, as Redis carries it
_KINDS = frozenset((DOCUMENTS, CONVERSATIONS, MODEL))
_LONGEST_MESSAGE = 16 * 1024  # characters of one Redis message: a Change is a few names


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


class RedisBus:
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

    def _received(self, data: object) -> None:
        change = change_from(data)
        if change is None:
            log.warning("a message on %s is not an event: %.200r", self.channel, data)
        elif change.origin != self._origin:  # this replica delivered its own already
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


def change_from(data: object) -> Change | None:
    """The change a Redis message carries; None for anything not shaped as ``publish`` writes one (whoever
    else may write to the channel): every field a string, a kind there is, the names a kind needs."""
    if not isinstance(data, bytes | str) or len(data) > _LONGEST_MESSAGE:
        return None
    try:
        fields = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    values = {name: fields.get(name, "") for name in _FIELDS}
    if not all(isinstance(value, str) for value in values.values()) or values["kind"] not in _KINDS:
        return None
    change = Change(**values)
    if (change.kind != MODEL and not change.collection) or (change.kind == CONVERSATIONS and not change.user):
        return None
    return change


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url
