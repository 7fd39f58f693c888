"""The answer cache: first-turn answers kept on disk (diskcache) and served at once.

An answer is found again by its question, normalised (Unicode form, case, spacing,
punctuation), within a scope: the collection's fingerprint (which moves on every ingest or
removal, so a stale answer is never served), the model, the settings that change an answer,
the mode and the schema. Optionally a differently worded question whose embedding is close
enough to a cached one is served too, marked as a near match. A damaged cache is deleted
and rebuilt, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Cosine similarity of all-MiniLM-L6-v2 question embeddings at or above which a cached answer
# is offered for a differently worded question, when no pivot word differs (``compatible``).
# bench/cache_threshold.py: with the guard, no "neighbour" (a different question about the
# same documents) scores above 0.837, and 0.92 still serves about half of the paraphrases;
# without the guard, "when/where was the treaty signed?" scores 0.963.
SIMILAR_THRESHOLD = 0.92

# Words whose change turns a question into another one even when embeddings barely move:
# "when" / "where", "Q2" / "Q3", "2023" / "2024", "allowed" / "not allowed".
_PIVOTS = frozenset("who whom whose what when where why how which not no never without first last".split())

_HITS, _MISSES = "__hits__", "__misses__"
_MAX_SIMILAR = 500  # questions remembered per scope for near matching


def compatible(a: str, b: str) -> bool:
    """Whether two questions may share an answer: they must not differ in a pivot word or a number."""
    words_a, words_b = set(normalise(a).split()), set(normalise(b).split())
    changed = words_a ^ words_b
    return not any(w in _PIVOTS or any(ch.isdigit() for ch in w) for w in changed)


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
    """A cached answer: ``kind`` is ``exact`` or ``similar`` (then ``similarity`` says how close)."""

    payload: dict[str, Any]
    kind: str
    similarity: float = 1.0
    question: str = ""


class AnswerCache:
    """Answers on disk, bounded in size, each kept for ``ttl_days``."""

    def __init__(
        self, folder: Path, size_mb: int = 256, ttl_days: float = 30.0, similar_threshold: float | None = SIMILAR_THRESHOLD
    ) -> None:
        self.folder = folder
        self.size_limit = size_mb * 2**20
        self.ttl = ttl_days * 86400
        self.similar_threshold = similar_threshold
        self._lock = threading.RLock()
        self._cache = self._open()

    def _open(self):  # noqa: ANN202 - diskcache.Cache
        import diskcache

        try:
            return diskcache.Cache(str(self.folder), size_limit=self.size_limit, eviction_policy="least-recently-used")
        except (sqlite3.Error, OSError) as exc:
            log.warning("answer cache at %s is damaged (%s); rebuilding it", self.folder, exc)
            shutil.rmtree(self.folder, ignore_errors=True)
            return diskcache.Cache(str(self.folder), size_limit=self.size_limit, eviction_policy="least-recently-used")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Run a cache operation; on a damaged database, rebuild the cache and carry on."""
        with self._lock:
            try:
                yield
            except (sqlite3.Error, OSError, ValueError, UnicodeDecodeError) as exc:
                log.warning("answer cache damaged (%s); rebuilding it", exc)
                self._rebuild()

    def _rebuild(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self._cache.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._cache = self._open()

    @staticmethod
    def _key(question: str, scope: str) -> str:
        return "a:" + hashlib.sha256(f"{scope}\0{normalise(question)}".encode()).hexdigest()

    @staticmethod
    def _scope_key(scope: str) -> str:
        return "s:" + hashlib.sha256(scope.encode()).hexdigest()

    def get(self, question: str, scope: str, vector: Callable[[], np.ndarray] | None = None) -> CacheHit | None:
        """The cached answer for ``question`` in ``scope``; ``vector`` (lazy) enables near matches."""
        hit: CacheHit | None = None
        with self._guard():
            raw = self._cache.get(self._key(question, scope))
            if raw is not None:
                hit = CacheHit(json.loads(raw), "exact", 1.0, question)
            elif vector is not None and self.similar_threshold is not None:
                hit = self._similar(question, scope, vector)
            self._cache.incr(_HITS if hit else _MISSES, default=0)
        return hit

    def _similar(self, question: str, scope: str, vector: Callable[[], np.ndarray]) -> CacheHit | None:
        known = self._cache.get(self._scope_key(scope))
        if not known:
            return None
        entries = json.loads(known)
        matrix = np.asarray([e["v"] for e in entries], dtype=np.float32)
        scores = matrix @ np.asarray(vector(), dtype=np.float32)
        for best in np.argsort(-scores):
            if scores[best] < self.similar_threshold:  # type: ignore[operator]
                return None
            if compatible(question, entries[best]["q"]) and (raw := self._cache.get(entries[best]["k"])) is not None:
                return CacheHit(json.loads(raw), "similar", float(scores[best]), entries[best]["q"])
        return None

    def put(self, question: str, scope: str, payload: dict[str, Any], vector: np.ndarray | None = None) -> None:
        """Remember an answer (and its question's embedding, for near matches)."""
        key = self._key(question, scope)
        with self._guard():
            self._cache.set(key, json.dumps(payload, ensure_ascii=False), expire=self.ttl)
            if vector is not None and self.similar_threshold is not None:
                scope_key = self._scope_key(scope)
                entries = json.loads(self._cache.get(scope_key) or "[]")
                entries = [e for e in entries if e["k"] != key][-(_MAX_SIMILAR - 1) :]
                entries.append({"k": key, "q": question, "v": [round(float(x), 5) for x in vector]})
                self._cache.set(scope_key, json.dumps(entries), expire=self.ttl)

    def stats(self) -> CacheStats:
        """Hits, misses, entries and bytes on disk."""
        with self._guard():
            entries = sum(1 for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith("a:"))
            return CacheStats(int(self._cache.get(_HITS, 0)), int(self._cache.get(_MISSES, 0)), entries, int(self._cache.volume()))
        return CacheStats(0, 0, 0, 0)

    def clear(self) -> None:
        """Forget every answer and reset the counts."""
        with self._guard():
            self._cache.clear()

    def close(self) -> None:
        with self._lock:
            self._cache.close()
