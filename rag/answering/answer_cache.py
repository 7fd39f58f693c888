"""The answer cache: first-turn answers kept on disk (diskcache), or for a team's server
replicas in Redis, and served at once.

An answer is found again by its question, normalised (Unicode form, case, spacing,
punctuation), within a scope: the collection's fingerprint (which moves on every ingest or
removal, so a stale answer is never served), the model, the settings that change an answer,
the mode and the schema. Optionally a differently worded question whose embedding is close
enough to a cached one is served too, marked as a near match. A damaged cache is deleted
and rebuilt, and a Redis that cannot be reached is a miss: never a crash. A Redis that hangs or
goes away costs one socket timeout: a breaker (``rag.breaker``) then skips it until it answers again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sqlite3
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag.breaker import Breaker

if TYPE_CHECKING:
    import diskcache

log = logging.getLogger(__name__)

# Cosine similarity of all-MiniLM-L6-v2 question embeddings at or above which a cached answer
# is offered for a differently worded question, when no pivot word differs (``compatible``).
# bench/cache_threshold.py: with the guard, no "neighbour" (a different question about the
# same documents) scores above 0.837, and 0.92 still serves about half of the paraphrases;
# without the guard, "when/where was the treaty signed?" scores 0.963.
SIMILAR_THRESHOLD = 0.92

# Words whose change turns a question into another one even when embeddings barely move:
# "when" / "where", "Q2" / "Q3", "2023" / "2024", "allowed" / "not allowed".
_PIVOTS = frozenset({"who", "whom", "whose", "what", "when", "where", "why", "how", "which",
                     "not", "no", "never", "without", "first", "last"})

_HITS, _MISSES = "__hits__", "__misses__"
_MAX_SIMILAR = 500  # questions remembered per scope for near matching

T = TypeVar("T")


def pivots(question: str) -> frozenset[str]:
    """The words of ``question`` that make it another question when changed: pivots and numbers."""
    return frozenset(w for w in normalise(question).split() if w in _PIVOTS or any(ch.isdigit() for ch in w))


def compatible(a: str, b: str) -> bool:
    """Whether two questions may share an answer: they must not differ in a pivot word or a number."""
    return pivots(a) == pivots(b)


def _sealed(scope: str, words: frozenset[str]) -> list[str]:
    """``words`` as the cache keeps them: digests, so that no question is stored as text."""
    return sorted(hashlib.sha256(f"{scope}\0{w}".encode()).hexdigest()[:16] for w in words)


def normalise(question: str) -> str:
    """Case, spacing, punctuation and Unicode form folded away."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counts since the cache was created or cleared."""

    hits: int
    misses: int
    entries: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached answer: ``kind`` is ``exact`` or ``similar`` (then ``similarity`` says how close).

    The question it answered is not kept, and so not shown: on a team server it may be another
    person's."""

    payload: dict[str, Any]
    kind: str
    similarity: float = 1.0


class _Disk:
    """The answers of one machine: a diskcache folder, bounded, least recently used first out."""

    damage = (sqlite3.Error, OSError, ValueError, UnicodeDecodeError)

    def __init__(self, folder: Path, size_limit: int) -> None:
        self.folder = folder
        self.size_limit = size_limit
        self._cache = self._open()

    def _open(self) -> diskcache.Cache:
        import diskcache

        try:
            return diskcache.Cache(str(self.folder), size_limit=self.size_limit, eviction_policy="least-recently-used")
        except (sqlite3.Error, OSError) as exc:
            log.warning("answer cache at %s is damaged (%s); rebuilding it", self.folder, exc)
            shutil.rmtree(self.folder, ignore_errors=True)
            return diskcache.Cache(str(self.folder), size_limit=self.size_limit, eviction_policy="least-recently-used")

    def get(self, key: str) -> str | None:
        return self._cache.get(key)

    def set(self, key: str, value: str, ttl: float) -> None:
        self._cache.set(key, value, expire=ttl)

    def count(self, key: str) -> None:
        self._cache.incr(key, default=0)

    def number(self, key: str) -> int:
        return int(self._cache.get(key, 0))

    def size(self) -> tuple[int, int]:
        entries = sum(1 for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith("a:"))
        return entries, int(self._cache.volume())

    def clear(self) -> None:
        self._cache.clear()

    def rebuild(self) -> None:
        with contextlib.suppress(Exception):
            self._cache.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._cache = self._open()

    def close(self) -> None:
        self._cache.close()


class _Redis:
    """The answers of a team's server replicas, shared in Redis; keys under ``prefix``, each with
    its time to live (Redis's own ``maxmemory`` policy bounds the size)."""

    def __init__(self, url: str, prefix: str = "archivist:", timeout: float = 2.0, retry_every: float = 2.0) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.damage = (redis.RedisError,)
        self.prefix = prefix
        # No retries of redis-py's own (``redis.Redis()`` retries three times by default, with backoff:
        # eight seconds for one call to a paused Redis): the breaker decides when to try again.
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), decode_responses=True)
        # Paused, hung or gone: the socket times out or is refused. Anything else (out of memory, a
        # key of another type) is Redis answering, and only that call goes without the cache.
        self.breaker = Breaker(f"Redis at {_without_password(url)}", self._redis.ping,
                               (redis.ConnectionError, redis.TimeoutError), retry_every)

    def get(self, key: str) -> str | None:
        return self._redis.get(self.prefix + key)

    def set(self, key: str, value: str, ttl: float) -> None:
        self._redis.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))

    def count(self, key: str) -> None:
        self._redis.incr(self.prefix + key)

    def number(self, key: str) -> int:
        return int(self._redis.get(self.prefix + key) or 0)

    def size(self) -> tuple[int, int]:
        keys = list(self._redis.scan_iter(self.prefix + "a:*", count=1000))
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.strlen(key)
            return len(keys), sum(pipe.execute())

    def clear(self) -> None:
        keys = list(self._redis.scan_iter(self.prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            self._redis.delete(*keys[start:start + 1000])

    def rebuild(self) -> None:
        """Nothing to rebuild: a Redis that cannot be reached is a miss until it is back."""

    def close(self) -> None:
        self.breaker.close()
        self._redis.close()


def _without_password(url: str) -> str:
    """``url`` as the log may show it: ``redis://:secret@host`` loses its secret."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url


class AnswerCache:
    """Answers on disk (or in a team's Redis), bounded in size, each kept for ``ttl_days``.

    ``redis_timeout`` bounds each Redis round trip; after the first that times out (or a refused
    connection), ``breaker`` opens and the cache is a miss at once until Redis answers a ping again,
    tried every ``redis_retry_every`` seconds in the background."""

    def __init__(
        self, folder: Path, size_mb: int = 256, ttl_days: float = 30.0, similar_threshold: float | None = SIMILAR_THRESHOLD,
        redis_url: str = "", redis_timeout: float = 2.0, redis_retry_every: float = 2.0,
    ) -> None:
        self.folder = folder
        self.ttl = ttl_days * 86400
        self.similar_threshold = similar_threshold
        self._lock = threading.RLock()  # the disk's: a damaged database is rebuilt under it
        self._store: _Disk | _Redis = (_Redis(redis_url, timeout=redis_timeout, retry_every=redis_retry_every)
                                       if redis_url else _Disk(folder, size_mb * 2**20))

    @property
    def breaker(self) -> Breaker | None:
        """The shared Redis's breaker (None for a cache on disk)."""
        return self._store.breaker if isinstance(self._store, _Redis) else None

    def _run(self, action: Callable[[], T], fallback: T) -> T:
        """``action()``, or ``fallback`` when the cache cannot serve. On disk, under the lock: a damaged
        database is rebuilt. In Redis, through the breaker and under no lock (the client's connection
        pool is thread-safe): a Redis that hangs costs the questions in flight one timeout together,
        not one timeout each, in turn, behind a lock."""
        if isinstance(self._store, _Disk):
            with self._lock:
                try:
                    return action()
                except self._store.damage as exc:
                    log.warning("answer cache unusable (%s); rebuilding it", exc)
                    self._store.rebuild()
                    return fallback
        breaker = self._store.breaker

        def answering() -> T:
            try:
                return action()
            except breaker.failures:
                raise
            except self._store.damage as exc:  # Redis answered, with an error: this call goes without it
                log.warning("answer cache unusable (%s); going on without it", exc)
                return fallback

        return breaker.call(answering, lambda: fallback)

    @staticmethod
    def _key(question: str, scope: str) -> str:
        return "a:" + hashlib.sha256(f"{scope}\0{normalise(question)}".encode()).hexdigest()

    @staticmethod
    def _scope_key(scope: str) -> str:
        return "s:" + hashlib.sha256(scope.encode()).hexdigest()

    def get(self, question: str, scope: str, vector: Callable[[], np.ndarray] | None = None) -> CacheHit | None:
        """The cached answer for ``question`` in ``scope``; ``vector`` (lazy) enables near matches."""

        def look_up() -> CacheHit | None:
            hit: CacheHit | None = None
            raw = self._store.get(self._key(question, scope))
            if raw is not None:
                hit = CacheHit(json.loads(raw), "exact", 1.0)
            elif vector is not None and self.similar_threshold is not None:
                hit = self._similar(question, scope, vector)
            self._store.count(_HITS if hit else _MISSES)
            return hit

        return self._run(look_up, None)

    def _similar(self, question: str, scope: str, vector: Callable[[], np.ndarray]) -> CacheHit | None:
        known = self._store.get(self._scope_key(scope))
        if not known:
            return None
        entries = json.loads(known)
        matrix = np.asarray([e["v"] for e in entries], dtype=np.float32)
        scores = matrix @ np.asarray(vector(), dtype=np.float32)
        sealed = _sealed(scope, pivots(question))
        for best in np.argsort(-scores):
            if scores[best] < self.similar_threshold:  # type: ignore[operator]
                return None
            fits = entries[best].get("p") == sealed
            if fits and (raw := self._store.get(entries[best]["k"])) is not None:
                return CacheHit(json.loads(raw), "similar", float(scores[best]))
        return None

    def put(self, question: str, scope: str, payload: dict[str, Any], vector: np.ndarray | None = None) -> None:
        """Remember an answer (and its question's embedding, for near matches)."""
        key = self._key(question, scope)

        def store() -> None:
            self._store.set(key, json.dumps(payload, ensure_ascii=False), self.ttl)
            if vector is not None and self.similar_threshold is not None:
                # Read, amend, write: two puts in one scope at once may lose one of the two questions
                # from the near-match list (not its answer), in one process as across replicas.
                scope_key = self._scope_key(scope)
                entries = json.loads(self._store.get(scope_key) or "[]")
                entries = [e for e in entries if e["k"] != key][-(_MAX_SIMILAR - 1) :]
                entries.append({"k": key, "p": _sealed(scope, pivots(question)),
                                "v": [round(float(x), 5) for x in vector]})
                self._store.set(scope_key, json.dumps(entries), self.ttl)

        self._run(store, None)

    def stats(self) -> CacheStats:
        """Hits, misses, entries and bytes stored (all nought while the cache cannot be reached)."""

        def count() -> CacheStats:
            entries, size = self._store.size()
            return CacheStats(self._store.number(_HITS), self._store.number(_MISSES), entries, size)

        return self._run(count, CacheStats(0, 0, 0, 0))

    def clear(self) -> None:
        """Forget every answer and reset the counts."""
        self._run(self._store.clear, None)

    def close(self) -> None:
        with self._lock:
            self._store.close()
