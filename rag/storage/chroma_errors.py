"""Where Chroma's, SQLite's, the network's and the disk's errors become ``StoreUnavailable``: one place.

A Chroma server that does not answer (refused, timed out, cut off) opens the store's breaker
(``server_breaker``): later calls raise ``StoreUnavailable`` at once until its heartbeat answers again.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rag.breaker import Breaker
from rag.errors import CollectionExists, CollectionNotFound, StoreUnavailable


@contextmanager
def translate_errors(action: str, breaker: Breaker | None = None) -> Iterator[None]:
    """Turn Chroma, SQLite, network and disk errors into ``StoreUnavailable``, in one place; through
    ``breaker`` (a Chroma server's), at once while the server does not answer."""
    from chromadb.errors import ChromaError

    guarded = breaker.guard(lambda: _not_answering(breaker)) if breaker else contextlib.nullcontext()
    try:
        with guarded:
            yield
    except (CollectionNotFound, CollectionExists, StoreUnavailable):
        raise
    except (ChromaError, sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"{action} failed: {_plain(exc)}") from exc
    except Exception as exc:
        # httpx, the Rust core's bindings and friends raise their own types; name them plainly.
        if type(exc).__module__.split(".")[0] in {"httpx", "httpcore", "chromadb", "chromadb_rust_bindings"}:
            raise StoreUnavailable(f"{action} failed: {_plain(exc)}") from exc
        raise


def server_breaker(location: str, heartbeat: Callable[[], object], retry_every: float) -> Breaker:
    """The breaker of the Chroma server at ``location``. It opens on a request that got no HTTP answer
    (httpx's transport errors: refused, timed out, cut off), never on an error the server answers with."""
    import httpx

    return Breaker(f"the Chroma server at {location}", heartbeat, (httpx.TransportError,), retry_every)


def _not_answering(breaker: Breaker) -> StoreUnavailable:
    return StoreUnavailable(f"{breaker.name} did not answer; it is tried again every {breaker.retry_every:g} s")


def _plain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "disk is full" in lowered or "no space left" in lowered:
        return "the disk is full; free some space and try again"
    if "connect" in lowered and ("refused" in lowered or "error" in lowered):
        return f"cannot reach the Chroma server ({text})"
    return text
